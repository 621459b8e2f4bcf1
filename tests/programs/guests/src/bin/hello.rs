//! Prints its arguments and granted environment, writes to stderr, and
//! exits with the code given as `exit=N`.

fn main() {
    println!("hello from arcella");
    println!("argv0: {}", std::env::args().next().unwrap_or_default());
    let mut code = 0;
    for arg in std::env::args().skip(1) {
        println!("arg: {arg}");
        if let Some(n) = arg.strip_prefix("exit=") {
            code = n.parse().unwrap_or(1);
        }
    }
    let mut vars: Vec<_> = std::env::vars().collect();
    vars.sort();
    for (key, value) in vars {
        println!("env: {key}={value}");
    }
    eprintln!("hello on stderr");
    std::process::exit(code);
}
