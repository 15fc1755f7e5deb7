//! `redis-ferry tail`: print the live command stream.

#[derive(clap::Args, Debug)]
pub struct TailArgs {}

pub fn run(_args: TailArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
