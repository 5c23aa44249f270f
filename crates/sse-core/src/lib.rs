//! Runtime-agnostic Server-Sent Events.
//!
//! `sse-core` holds everything about SSE that does not touch a socket, a timer or a task:
//!
//! - [`Namespace`]: hierarchical channel names (`/pets/cats/persian`), their validation
//!   and segment-boundary matching.
//! - [`Event`] → [`EncodedEvent`]: the wire encoding, done once per event and shared by
//!   every subscriber.
//! - [`Decoder`]: an incremental, spec-exact event-stream parser for clients.
//! - [`Hub`]: the subscriber registry with bounded per-subscriber queues, publish
//!   fan-out and replay history; a [`Subscription`] is a [`futures_core::Stream`] woken
//!   through its [`Waker`](std::task::Waker), so any executor can drive it.
//!
//! It depends only on `std`, `bytes`, `memchr` and `futures-core`; serving it over HTTP is
//! the job of `sse-hyper`.
//!
//! # Example
//!
//! A subscriber of `/pets` receives what is published to `/pets/dogs`, and a reconnecting
//! one replays what it missed:
//!
//! ```
//! use futures::StreamExt;
//! use sse_core::{Decoder, Event, Hub, Namespace};
//!
//! let hub = Hub::new();
//! let pets = Namespace::parse("/pets").unwrap();
//! let dogs = Namespace::parse("/pets/dogs").unwrap();
//!
//! let mut live = hub.subscribe(&[pets.clone()]);
//! let first = hub.publish(&dogs, Event::new("Corgi").with_event("new-dog")).unwrap();
//! hub.publish(&dogs, Event::new("Beagle").with_event("new-dog")).unwrap();
//!
//! // A client decodes the bytes the subscription yields.
//! let mut decoder = Decoder::new();
//! let bytes = futures::executor::block_on(live.next()).unwrap();
//! let events = decoder.decode(&bytes).unwrap();
//! assert_eq!(events[0].event_type, "new-dog");
//! assert_eq!(events[0].data, "Corgi");
//!
//! // Reconnecting after the first event replays only the second.
//! let mut resumed = hub.subscribe_after(&[pets], &first.id);
//! let replayed = futures::executor::block_on(resumed.next()).unwrap();
//! assert_eq!(decoder.decode(&replayed).unwrap()[0].data, "Beagle");
//! ```
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]
#![forbid(unsafe_code)]

mod decode;
mod event;
mod history;
mod hub;
mod namespace;
mod subscription;
mod sync;

pub use decode::{DecodeError, Decoder, EventRef, MessageEvent, DEFAULT_MAX_EVENT_SIZE};
pub use event::{encode_comment, encode_preamble, EncodedEvent, Event, EventError};
pub use history::Gap;
pub use hub::{
    HistoryTooShort, Hub, HubBuilder, HubStats, PublishError, Published, DEFAULT_HISTORY_BYTES,
    DEFAULT_HISTORY_CAPACITY, DEFAULT_MAX_EVENT_BYTES, DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_CAPACITY,
};
pub use namespace::{
    Namespace, NamespaceError, NamespaceRule, SelfAndAncestors, MAX_LEN, MAX_SEGMENTS,
    MAX_SEGMENT_LEN,
};
pub use subscription::{CloseReason, Subscription, SubscriptionWatch};
