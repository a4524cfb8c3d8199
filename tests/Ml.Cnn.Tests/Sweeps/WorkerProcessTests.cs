using System.Diagnostics;
using Microsoft.ML;
using Ml.Cnn.Samples.Sweep;
using Ml.Cnn.Sweeps;
using Xunit;

namespace Ml.Cnn.Tests.Sweeps;

/// <summary>
/// The sample's worker processes on one study, killed with SIGKILL mid-trial: every trial ends exactly once, the
/// killed one runs again, and the study ends as one uninterrupted worker's does. CNN trials on 1 thread each (the
/// same seed and thread count give the same model), small enough to finish in seconds.
/// </summary>
[Collection(SweepsAlone.Name)]
public sealed class WorkerProcessTests : IDisposable
{
    private const int TrainRows = 600, ValidationRows = 300, Epochs = 3, LeaseSeconds = 4;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "mlcnn-workers-" + Guid.NewGuid().ToString("N"));

    public WorkerProcessTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void ASqliteStudyKilledMidTrialAndRestartedEndsWithTheUninterruptedLeaderboard()
    {
        var storage = StudyStorage.Sqlite(Path.Combine(_folder, "killed.db"));
        // TPE (after 6 random trials) and ASHA: each trial's parameters and fate depend on the trials before it.
        var options = Objectives.Options("cnn", storage, "cnn", trials: 8);
        var killed = StartWorker(storage, "cnn", "tpe", 8);
        var victim = KillMidTrial(killed, Study(options), trialNumber: 2);
        // Restarted once the lease has lapsed, so the killed trial is the next it takes, as it would have been.
        Thread.Sleep(TimeSpan.FromSeconds(LeaseSeconds + 1));
        var restarted = StartWorker(storage, "cnn", "tpe", 8);
        WaitForExit(restarted);

        var interrupted = Study(options).Trials();
        var uninterrupted = InProcess(Objectives.Options("cnn", StudyStorage.Sqlite(Path.Combine(_folder, "whole.db")), "cnn", trials: 8));
        Assert.Equal(Leaderboard(uninterrupted), Leaderboard(interrupted));
        Assert.Equal(2, interrupted[victim].Attempts);
        Assert.Contains(interrupted, t => t.State == TrialState.Pruned);
        Assert.All(interrupted.Where(t => t.Number != victim), t => Assert.Equal(1, t.Attempts));
    }

    [PostgreSqlFact]
    public void ThreeWorkersOnAPostgreSqlStudyLoseOneToSigkillAndEndLikeOneWorker()
    {
        var storage = PostgreSqlFactAttribute.Storage();
        string name = "cnn-" + Guid.NewGuid().ToString("N")[..8];
        var options = Objectives.Options("cnn", storage, name, trials: 8, sampler: "random");
        var workers = Enumerable.Range(0, 3).Select(_ => StartWorker(storage, name, "random", 8)).ToList();
        try
        {
            int victim = KillMidTrial(workers[1], Study(options), trialNumber: null);
            WaitForExit(workers[0]);
            WaitForExit(workers[2]);

            var shared = Study(options).Trials();
            Assert.Equal(Enumerable.Range(0, 8), shared.Select(t => t.Number));
            Assert.All(shared, t => Assert.Equal(TrialState.Complete, t.State));
            Assert.Equal(2, shared[victim].Attempts);
            Assert.All(shared.Where(t => t.Number != victim), t => Assert.Equal(1, t.Attempts));
            Assert.DoesNotContain(shared, t => t.Worker!.Contains($":{workers[1].Id}:"));

            var alone = InProcess(Objectives.Options("cnn", StudyStorage.Sqlite(Path.Combine(_folder, "alone.db")), "cnn", trials: 8, sampler: "random"));
            Assert.Equal(Leaderboard(alone), Leaderboard(shared));
            Assert.Equal(alone.MaxBy(t => t.Value)!.Number, shared.MaxBy(t => t.Value)!.Number);
        }
        finally
        {
            foreach (var w in workers) { if (!w.HasExited) w.Kill(); w.Dispose(); }
            storage.DeleteStudy(name);
        }
    }

    [Fact]
    public void TheSampleSweepsBothModelsWritesItsFilesAndResumesAFinishedStudy()
    {
        string Run() => RunSample("--trials", "3", "--epochs", "2", "--train-rows", "300", "--validation-rows", "200");
        string first = Run();
        foreach (var file in new[] { "knn.csv", "knn.png", "knn-best.zip", "cnn.csv", "cnn.png", "cnn-best.zip" })
            Assert.True(new FileInfo(Path.Combine(_folder, file)).Length > 0, file);
        Assert.Contains("Study cnn: MicroAccuracy (maximized), 3 trials", first);
        string BestLines(string output) => string.Join("\n", output.Split('\n').Where(l => l.Contains(": best MicroAccuracy")).Select(l => l[..l.IndexOf(';')]));
        string again = Run(); // the studies are finished: nothing runs, the same best comes back
        Assert.Equal(BestLines(first), BestLines(again));
        Assert.DoesNotContain("cnn trial", again);
    }

    private string RunSample(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "exec", Path.Combine(AppContext.BaseDirectory, "Ml.Cnn.Samples.Sweep.dll"), "--out", _folder,
            "--data", SweepTests.EmbeddedData }.Concat(args)) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}: {error.Result}");
        return output;
    }

    private static Study Study(SweepOptions o) => Ml.Cnn.Sweeps.Study.Open(o.Storage!, o.StudyName, o.SearchSpace, StudyDirection.Maximize, o.Sampler, o.Pruner, o.Trials);

    private static IEnumerable<(int, TrialState, string, double?, int)> Leaderboard(IEnumerable<TrialRecord> trials) =>
        trials.Select(t => (t.Number, t.State, t.Parameters.ToJson(), t.Value, t.Steps));

    private static IReadOnlyList<TrialRecord> InProcess(SweepOptions options)
    {
        var ml = new MLContext(seed: 1);
        options.ThreadsPerTrial = 1;
        options.RefitBest = false;
        return Objectives.Run(ml, "cnn", options, Objectives.Data(ml, SweepTests.EmbeddedData, TrainRows, ValidationRows), Epochs).Trials;
    }

    private Process StartWorker(StudyStorage storage, string study, string sampler, int trials)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string connection = storage.IsPostgreSql ? PostgreSqlFactAttribute.ConnectionString! : storage.ToString();
        foreach (var a in new[]
        {
            "exec", Path.Combine(AppContext.BaseDirectory, "Ml.Cnn.Samples.Sweep.dll"), "worker", "--storage", connection, "--study", study,
            "--objective", "cnn", "--sampler", sampler, "--trials", $"{trials}", "--epochs", $"{Epochs}", "--threads", "1",
            "--lease", $"{LeaseSeconds}", "--train-rows", $"{TrainRows}", "--validation-rows", $"{ValidationRows}",
            "--data", SweepTests.EmbeddedData, "--out", _folder,
        }) start.ArgumentList.Add(a);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        return process;
    }

    /// <summary>
    /// Waits until <paramref name="worker"/> holds a trial (<paramref name="trialNumber"/>, or any) that has reported
    /// an epoch, kills it with SIGKILL and returns that trial's number.
    /// </summary>
    private static int KillMidTrial(Process worker, Study study, int? trialNumber)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(2))
        {
            if (worker.HasExited) throw new InvalidOperationException($"The worker exited ({worker.ExitCode}) before it could be killed: {worker.StandardError.ReadToEnd()}");
            var running = study.Trials().FirstOrDefault(t => t.State == TrialState.Running && t.Intermediate.Count > 0
                && t.Worker!.Contains($":{worker.Id}:") && (trialNumber is null || t.Number == trialNumber));
            if (running is not null)
            {
                worker.Kill(); // SIGKILL: no handler runs, the lease is left to run out
                worker.WaitForExit();
                Assert.Equal(TrialState.Running, study.Trials()[running.Number].State);
                return running.Number;
            }
            Thread.Sleep(10);
        }
        throw new TimeoutException("The worker never held the trial mid-way.");
    }

    private static void WaitForExit(Process worker)
    {
        if (!worker.WaitForExit(TimeSpan.FromMinutes(3))) { worker.Kill(); throw new TimeoutException("A worker did not finish its study."); }
        Assert.True(worker.ExitCode == 0, $"worker exit code {worker.ExitCode}: {worker.StandardError.ReadToEnd()}");
    }
}
