//! Subscriptions over WebSocket, in one process and across two sharing Redis (written next).
