// Adds the types of a WIT world to a core module, as `jco embed` would
// (`wasm-tools component embed`): node embed.mjs CORE.wasm WIT_DIR WORLD OUT.wasm
//
// jco 1.35's own `jco embed --wit DIR` cannot read any file (its WASI shim
// starts with no preopened directory: "panicked ... NotFound"), so this
// calls the same embedded wasm-tools through jco's API with the root
// directory preopened. It uses the jco on PATH (or $JCO).
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { existsSync, readFileSync, writeFileSync, realpathSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";

const [core, wit, world, out] = process.argv.slice(2);
if (!out) {
    console.error("usage: node embed.mjs CORE.wasm WIT_DIR WORLD OUT.wasm");
    process.exit(2);
}
let jco;
try {
    jco = realpathSync(execFileSync("sh", ["-c", 'command -v "${JCO:-jco}"']).toString().trim());
} catch {
    console.error("jco not found: npm install -g @bytecodealliance/jco@1.35.0 (or set JCO)");
    process.exit(1);
}
const isJco = (dir) => {
    const manifest = join(dir, "package.json");
    return existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === "@bytecodealliance/jco";
};
let dir = dirname(jco);
while (!isJco(dir)) {
    if (dirname(dir) === dir) {
        console.error(`${jco} is not inside the @bytecodealliance/jco package`);
        process.exit(1);
    }
    dir = dirname(dir);
}
const toolsPath = createRequire(join(dir, "package.json")).resolve("@bytecodealliance/jco-transpile/wasm-tools");
const shimPath = createRequire(toolsPath).resolve("@bytecodealliance/preview2-shim/filesystem");
const shim = await import(pathToFileURL(shimPath));
shim._setPreopens({ "/": "/" });
const tools = await import(pathToFileURL(toolsPath));
const bytes = await tools.componentEmbed({ binary: readFileSync(core), witPath: resolve(wit), world });
writeFileSync(out, bytes);
