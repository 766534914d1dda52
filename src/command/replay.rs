//! Loading the append-only file at start-up through the command path: the
//! log's commands run as an internal client's, so a replayed write is
//! applied exactly as the client's was (same handlers, same engine path).

use std::sync::Arc;

use bytes::Bytes;

use super::Client;
use crate::persist::load::Replay;
use crate::state::Shared;

/// Runs a log's commands with an internal client, a fresh one per file.
pub struct Replayer {
    shared: Arc<Shared>,
    client: Client,
}

impl Replayer {
    /// A replayer for the server `shared`.
    pub fn new(shared: Arc<Shared>) -> Replayer {
        let client = Client::internal(shared.clone());
        Replayer { shared, client }
    }
}

impl Replay for Replayer {
    fn command(&mut self, args: Vec<Bytes>) -> bool {
        if !super::is_known(&self.client, &args) {
            return false;
        }
        super::execute(&mut self.client, args);
        self.client.out.clear();
        if self.client.blocked.is_some() {
            super::transactions::client_gone(&mut self.client);
        }
        true
    }

    fn end_of_file(&mut self) {
        super::transactions::client_gone(&mut self.client);
        self.client = Client::internal(self.shared.clone());
    }
}
