using Xunit;

namespace Ml.Cnn.Tests.Sweeps;

/// <summary>
/// Sweep tests that time leases, kill processes or read the process's working set: they run after the parallel
/// tests, one at a time, so other tests' threads and allocations do not decide them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SweepsAlone
{
    public const string Name = "Sweeps that time leases, kill workers or measure memory";
}
