using System.Diagnostics;
using Microsoft.ML;
using Ml.Cnn.Core;
using Ml.Cnn.MLNet;
using Ml.Cnn.Optimizers;
using Ml.Cnn.SaveWorker;
using Ml.Cnn.Training;
using Xunit;

namespace Ml.Cnn.Tests.Robustness;

/// <summary>
/// A child process saving over and over is killed at a random moment, past its second save: the file it was
/// replacing must still load. ML.NET's own Save, which writes in place, fails this.
/// </summary>
public sealed class KillDuringSaveTests : IDisposable
{
    private const int Kills = 3;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "mlcnn-kill-" + Guid.NewGuid().ToString("N"));

    public KillDuringSaveTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string WorkerPath => Path.Combine(AppContext.BaseDirectory, "Ml.Cnn.SaveWorker.dll");

    /// <summary>Starts the worker, waits for <paramref name="saves"/> complete saves, then kills it after a random pause.</summary>
    private static void RunAndKill(string mode, string path, int saves, Rng rng)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "exec", WorkerPath, mode, path }) start.ArgumentList.Add(a);
        using var worker = Process.Start(start)!;
        try
        {
            for (int seen = 0; seen < saves;)
            {
                var line = worker.StandardOutput.ReadLine() ?? throw new InvalidOperationException($"the worker exited with code {worker.ExitCode}");
                if (line == "saved") seen++;
            }
            Thread.Sleep(rng.NextInt(40));
        }
        finally
        {
            worker.Kill(entireProcessTree: true);
            worker.WaitForExit();
        }
    }

    [Fact]
    public void AKilledModelZipSaveLeavesALoadableZip()
    {
        var rng = new Rng(1);
        string path = Path.Combine(_folder, "model.zip");
        for (int kill = 0; kill < Kills; kill++)
        {
            RunAndKill("zip", path, 2 + kill, rng);
            var model = new MLContext().Model.LoadModel(path, out var schema);
            Assert.Contains(model.GetOutputSchema(schema), c => c.Name == "Score");
        }
    }

    [Fact]
    public void AKilledCheckpointSaveLeavesAValidCheckpoint()
    {
        var rng = new Rng(2);
        var data = KillTarget.Data();
        for (int kill = 0; kill < Kills; kill++)
        {
            RunAndKill("checkpoint", _folder, 2 + kill, rng);
            var network = KillTarget.Network();
            var options = KillTarget.CheckpointOptions(_folder, epochs: 100_000);
            var optimizer = new Adam(network.Parameters, options.LearningRate);
            var state = new RunState(new Rng(1));
            Checkpoint.Load(Path.Combine(_folder, "checkpoint.mlcnn"), network, optimizer, new LearningRateSchedule(), state,
                RunFingerprint.Of(data, options));
            Assert.True(state.CompletedEpochs >= 2 + kill, $"{state.CompletedEpochs} epochs after the kill");
        }
    }
}
