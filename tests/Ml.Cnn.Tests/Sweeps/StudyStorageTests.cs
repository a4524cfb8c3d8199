using Ml.Cnn.Sweeps;
using Xunit;

namespace Ml.Cnn.Tests.Sweeps;

/// <summary>The lease contract, on SQLite and on a real PostgreSQL server: the same checks for both.</summary>
[Collection(SweepsAlone.Name)]
public sealed class StudyStorageTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "mlcnn-study-" + Guid.NewGuid().ToString("N"));

    public StudyStorageTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private StudyStorage Sqlite() => StudyStorage.Sqlite(Path.Combine(_folder, "study.db"));

    private static readonly SearchSpace Space = new() { ["x"] = new UniformSingleOption(0, 1) };

    private static Study Open(StudyStorage storage, string name, int trials = 3) =>
        Study.Open(storage, name, Space, StudyDirection.Maximize, new RandomSampler(1), new NoPruner(), trials);

    private static string Fresh(StudyStorage storage)
    {
        string name = "test-" + Guid.NewGuid().ToString("N")[..8];
        storage.DeleteStudy(name);
        return name;
    }

    [Fact] public void SqliteLeasesEachTrialOnceUntilTheBudgetIsSpent() => LeasesEachTrialOnce(Sqlite());
    [PostgreSqlFact] public void PostgreSqlLeasesEachTrialOnceUntilTheBudgetIsSpent() => LeasesEachTrialOnce(PostgreSqlFactAttribute.Storage());
    [Fact] public void SqliteGivesAnExpiredLeaseToTheNextWorkerAndIgnoresTheOldHolder() => ExpiredLease(Sqlite());
    [PostgreSqlFact] public void PostgreSqlGivesAnExpiredLeaseToTheNextWorkerAndIgnoresTheOldHolder() => ExpiredLease(PostgreSqlFactAttribute.Storage());
    [Fact] public void SqliteSerializesConcurrentAskers() => ConcurrentAskers(Sqlite());
    [PostgreSqlFact] public void PostgreSqlSerializesConcurrentAskers() => ConcurrentAskers(PostgreSqlFactAttribute.Storage());

    private static void LeasesEachTrialOnce(StudyStorage storage)
    {
        var study = Open(storage, Fresh(storage));
        var trials = Enumerable.Range(0, 3).Select(_ => study.Ask("w", TimeSpan.FromMinutes(1))!).ToList();
        Assert.Equal([0, 1, 2], trials.Select(t => t.Number));
        Assert.Null(study.Ask("w", TimeSpan.FromMinutes(1)));
        Assert.False(study.IsFinished());
        foreach (var t in trials) Assert.True(t.Tell(TrialState.Complete, t.Parameters.Get<float>("x")));
        Assert.True(study.IsFinished());
        Assert.Equal(trials.MaxBy(t => t.Parameters.Get<float>("x"))!.Number, study.Best()!.Number);
        // The stored parameters are the sampler's, and a study reopened with more trials goes on.
        Assert.Equal(trials.Select(t => t.Parameters.ToJson()), study.Trials().Select(t => t.Parameters.ToJson()));
        var longer = Open(storage, study.Name, trials: 4);
        Assert.Equal(3, longer.Ask("w", TimeSpan.FromMinutes(1))!.Number);
        var e = Assert.Throws<InvalidOperationException>(() =>
            Study.Open(storage, study.Name, Space, StudyDirection.Maximize, new TpeSampler(), new NoPruner(), 4));
        Assert.Contains("sampler", e.Message);
        Assert.Contains("random(seed=1)", e.Message);
    }

    private static void ExpiredLease(StudyStorage storage)
    {
        var study = Open(storage, Fresh(storage));
        // Leases of 3 s and pauses of 2 s: a second of slack either way on a loaded machine.
        var first = study.Ask("a", TimeSpan.FromSeconds(3))!;
        Assert.False(first.Report(1, 0.5));
        Thread.Sleep(2000);
        Assert.True(first.Heartbeat());                      // kept alive past its first deadline…
        Thread.Sleep(2000);
        Assert.Equal(1, study.Ask("b", TimeSpan.FromSeconds(3))!.Number);
        Thread.Sleep(3500);                                  // …then left to run out
        var retaken = study.Ask("c", TimeSpan.FromMinutes(1))!;
        Assert.Equal(0, retaken.Number);
        Assert.Equal(first.Parameters.ToJson(), retaken.Parameters.ToJson());
        var record = study.Trials()[0];
        Assert.Equal(2, record.Attempts);
        Assert.Empty(record.Intermediate);                   // the dead attempt's reports are gone
        Assert.False(first.Heartbeat());
        Assert.Throws<TrialLeaseLostException>(() => first.Report(2, 0.9));
        Assert.False(first.Tell(TrialState.Complete, 0.9));
        Assert.True(retaken.Tell(TrialState.Complete, 0.4));
        Assert.Equal(0.4, study.Trials()[0].Value);
    }

    private static void ConcurrentAskers(StudyStorage storage)
    {
        var study = Open(storage, Fresh(storage), trials: 24);
        var told = new System.Collections.Concurrent.ConcurrentBag<int>();
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, w =>
        {
            var mine = Open(storage, study.Name, trials: 24);
            while (mine.Ask($"w{w}", TimeSpan.FromMinutes(1)) is { } trial)
                if (trial.Tell(TrialState.Complete, trial.Number)) told.Add(trial.Number);
        });
        Assert.Equal(Enumerable.Range(0, 24), told.Order());
        Assert.All(study.Trials(), t => Assert.Equal((TrialState.Complete, 1), (t.State, t.Attempts)));
    }
}
