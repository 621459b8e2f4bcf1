//! A component on the device's message bus (`wasi:messaging`). Modes
//! (first argument):
//! - `publish TOPIC N [SIZE]`: N messages `m<i>` (or SIZE bytes each) on
//!   TOPIC, then `published <ok> failed <n> <first error>`;
//! - `say TOPIC WORD...`: one message per word, each outcome printed
//!   (`said WORD` or `say WORD failed: <error>`);
//! - `every MS TOPIC`: a message `tick <i>` on TOPIC every MS milliseconds,
//!   forever, each outcome printed;
//! - `handle [SLOW_MS]`: waits forever while its incoming handler prints
//!   `got <topic> <data>` for each message (sleeping SLOW_MS first, to
//!   fall behind a flood); data `trap` makes the handler trap, `fail`
//!   return an error, `echo` publish `echoed` on `echo/<topic>`.
//! As a core module (wasip1) there is no bus: it exits 1.

#[cfg(target_env = "p1")]
fn main() {
    eprintln!("messenger needs the component model (build for wasm32-wasip2)");
    std::process::exit(1);
}

#[cfg(target_env = "p2")]
wit_bindgen::generate!({
    path: "../../../wit/deps/messaging",
    world: "wasi:messaging/messaging-core",
    generate_all,
});

#[cfg(target_env = "p2")]
use wasi::messaging::{producer, types};

#[cfg(target_env = "p2")]
fn send(client: &types::Client, topic: &str, data: Vec<u8>) -> Result<(), types::Error> {
    let message = types::Message::new(&data);
    message.set_content_type("text/plain");
    producer::send(client, topic, message)
}

#[cfg(target_env = "p2")]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map_or("", String::as_str);
    let client = types::Client::connect("local").expect("connect");
    match arg(0) {
        "publish" => {
            let n: usize = arg(2).parse().unwrap_or(1);
            let size: Option<usize> = arg(3).parse().ok();
            let (mut ok, mut failed, mut first) = (0, 0, None);
            for i in 0..n {
                let data = size.map_or_else(|| format!("m{i}").into_bytes(), |s| vec![b'x'; s]);
                match send(&client, arg(1), data) {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        failed += 1;
                        first.get_or_insert(format!("{e:?}"));
                    }
                }
            }
            println!("published {ok} failed {failed} {}", first.unwrap_or_default());
        }
        "say" => {
            for word in &args[2..] {
                match send(&client, arg(1), word.clone().into_bytes()) {
                    Ok(()) => println!("said {word}"),
                    Err(e) => println!("say {word} failed: {e:?}"),
                }
            }
        }
        "every" => {
            let ms: u64 = arg(1).parse().unwrap_or(1000);
            for i in 0.. {
                match send(&client, arg(2), format!("tick {i}").into_bytes()) {
                    Ok(()) => println!("sent tick {i}"),
                    Err(e) => println!("send failed: {e:?}"),
                }
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
        }
        "handle" => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        other => {
            eprintln!("unknown mode {other:?}");
            std::process::exit(2);
        }
    }
}

#[cfg(target_env = "p2")]
struct Handler;

#[cfg(target_env = "p2")]
impl exports::wasi::messaging::incoming_handler::Guest for Handler {
    fn handle(message: types::Message) -> Result<(), types::Error> {
        let slow: u64 = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(0);
        if slow > 0 {
            std::thread::sleep(std::time::Duration::from_millis(slow));
        }
        let topic = message.topic().unwrap_or_default();
        let data = String::from_utf8_lossy(&message.data()).into_owned();
        println!("got {topic} {data}");
        match data.as_str() {
            "trap" => panic!("asked to trap"),
            "fail" => Err(types::Error::Other("asked to fail".into())),
            "echo" => {
                let client = types::Client::connect("local")?;
                send(&client, &format!("echo/{topic}"), b"echoed".to_vec())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(target_env = "p2")]
export!(Handler);
