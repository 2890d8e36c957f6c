//! `AdminServer`: the REST API on the admin port (warp): health, the live actor tree, the
//! partitions, and — only when `[debug] fail_points` is on — fail points for tests.

mod groups;
mod routes;

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::task::JoinHandle;
use tracing::info;

use crate::context::NodeContext;
use crate::directory::MailboxGauge;

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
    /// The warp server; aborted when the actor stops.
    server: JoinHandle<()>,
    /// The node's shared context.
    ctx: Arc<NodeContext>,
    /// For `/admin/actors` (always empty: nothing is sent to this actor).
    _gauge: MailboxGauge,
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
        let routes = routes::routes(ctx.clone(), args.root);
        let server = tokio::spawn(warp::serve(routes).incoming(listener).run());
        info!("Admin API available at http://{local}/admin");
        let gauge = ctx.directory.register(&myself.get_cell(), "admin-server".into(), "AdminServer", args.restarts);
        Ok(AdminState { server, ctx, _gauge: gauge })
    }

    async fn post_stop(&self, myself: ActorRef<AdminMsg>, state: &mut AdminState) -> Result<(), ActorProcessingErr> {
        state.server.abort();
        state.ctx.directory.unregister(&myself.get_cell());
        Ok(())
    }
}
