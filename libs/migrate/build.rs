//! Rebuilds this crate when a migration is added: `sqlx::migrate!` embeds the files it finds, but cargo only
//! tracks the files it already knew about (the sqlx documentation recommends exactly this).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
