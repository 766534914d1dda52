//! Round trips of every type through the codec, and payloads as
//! redis-server 7.0.15 writes them.
