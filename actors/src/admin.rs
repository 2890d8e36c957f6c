//! `AdminServer`: the REST API on the admin port (warp): health, the live actor tree, the
//! partitions, the web console at `/` (`console`), and — only when `[debug] fail_points` is on — fail points for tests.

mod auth;
mod console;
mod digest;
mod fail_points;
mod groups;
mod metrics;
mod proxy;
mod routes;
mod serve;
mod transactions;
mod users;

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::info;

use crate::context::NodeContext;
use crate::directory::{MailboxGauge, Registration, TaskGuard};

/// The admin server has no requests of its own; warp serves on a task it owns.
pub enum AdminMsg {}

/// Arguments, kept by the NodeSupervisor for restarts.
#[derive(Debug, Clone)]
pub struct AdminArgs {
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Restarts so far.
    pub restarts: u32,
    /// The root of the tree `/admin/actors` shows.
    pub root: ractor::ActorCell,
}

/// The admin server's state.
pub struct AdminState {
    /// The warp server; aborted when the state drops.
    _server: TaskGuard,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    _registration: Registration,
}

/// The actor.
pub struct AdminServer;

impl Actor for AdminServer {
    type Msg = AdminMsg;
    type State = AdminState;
    type Arguments = AdminArgs;

    async fn pre_start(&self, myself: ActorRef<AdminMsg>, args: AdminArgs) -> Result<AdminState, ActorProcessingErr> {
        let ctx = args.ctx;
        let addr = ctx.config.admin_bind();
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen for the admin API on {addr}: {e}"))?;
        let local = listener.local_addr()?;
        let tls = crate::tls::admin_acceptor(&ctx.config.security)?;
        let routes = routes::routes(ctx.clone(), args.root, local)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        info!("✓ Admin API available at {scheme}://{local}/admin");
        let server = tokio::spawn(serve::serve(listener, routes, tls));
        let registration = ctx.directory.register(
            &myself.get_cell(),
            "admin-server".into(),
            "AdminServer",
            args.restarts,
            MailboxGauge::default(),
        );
        Ok(AdminState { _server: TaskGuard(server), _registration: registration })
    }
}
