//! Room server tests with real WebSocket clients against an in-process server.

mod admission;
mod chat;
mod common;
mod fuzz;
mod heartbeat;
mod join;
mod lifecycle;
mod limits;
mod media;
mod media_client;
mod moderation;
mod presence;
