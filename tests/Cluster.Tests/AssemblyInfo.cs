// each test starts its own redis-server and three gateway processes: one at a time on a shared machine
[assembly: CollectionBehavior(DisableTestParallelization = true)]
