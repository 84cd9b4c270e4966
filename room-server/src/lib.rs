//! One room server: WebSocket chat and the WebRTC SFU. Not built yet (see the room-server issue).
#![forbid(unsafe_code)]
