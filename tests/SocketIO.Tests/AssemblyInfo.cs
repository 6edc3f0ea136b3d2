// The protocol suites measure heartbeats of 300/200 ms: CPU-heavy collections (the parser fuzz
// tests) running beside them would make the server's timers late. Collections run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
