//! A consumer built against another shape of acme:thermo/sensor@1.2.0
//! (wit-misfit/): the daemon must not link it to the real provider.

wit_bindgen::generate!({ path: "wit-misfit", world: "consumer" });

fn main() {
    println!("read: {}", acme::thermo::sensor::read(1));
}
