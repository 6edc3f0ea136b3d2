// every test starts its own gateway process and measures its memory: one at a time
[assembly: CollectionBehavior(DisableTestParallelization = true)]
