// Migrations are embedded by `sqlx::migrate!()`; without this a new .sql file would not trigger
// a rebuild of the crate that embeds them.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
