//! API clients (the subsidy system pushing case records): each has a bearer token, shown once
//! at creation and stored only as a keyed hash. A client acts with one right, cases=update.

use rand::RngCore;

use super::Hozon;
use crate::audit::Event;
use crate::auth::{Actor, Function, Level};
use crate::error::{Error, Result};

const TOKEN: &str = "api_token";

#[derive(serde::Serialize, serde::Deserialize)]
struct Client {
    name: String,
    created_at: chrono::DateTime<chrono::Utc>,
    created_by: String,
}

impl Hozon {
    /// A new API token for client `name` (users=update); the token is returned once.
    pub fn create_api_token(&self, actor: &Actor, name: &str) -> Result<String> {
        actor.require(Function::Users, Level::Update)?;
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = hex::encode(raw);
        let key = self.store.lookup_hash(TOKEN, &token);
        let client =
            Client { name: name.to_owned(), created_at: chrono::Utc::now(), created_by: actor.name().to_owned() };
        let json = serde_json::to_vec(&client).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.store.put_doc(TOKEN, &key, &json, Event::new(actor.name(), "api_token.create", name, "ok"))?;
        Ok(token)
    }

    /// The actor a bearer token stands for, if it is one of ours.
    pub fn api_actor(&self, token: &str) -> Result<Option<Actor>> {
        if token.len() != 64 {
            return Ok(None);
        }
        let key = self.store.lookup_hash(TOKEN, token);
        let Some(json) = self.store.get_doc(TOKEN, &key)? else { return Ok(None) };
        let client: Client = serde_json::from_slice(&json).map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(Some(Actor::api_client(&client.name)))
    }
}
