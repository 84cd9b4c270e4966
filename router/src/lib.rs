//! The RoomRouter: rooms, invite links, room tokens, WebSocket proxy. Not built yet (see the router issue).
#![forbid(unsafe_code)]
