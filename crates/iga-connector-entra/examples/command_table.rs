//! Print the connector's command table (Markdown), the one the README carries.
//!
//! ```sh
//! cargo run -p iga-connector-entra --example command_table
//! ```

fn main() {
    print!("{}", iga_connector_entra::commands::render_markdown());
}
