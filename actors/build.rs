// Migrations are embedded with include_dir, which cannot tell cargo about new
// files on stable; this makes adding or editing one rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    println!("cargo:rerun-if-changed=../migrations/rollbacks");
}
