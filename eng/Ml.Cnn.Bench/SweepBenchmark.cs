using System.Diagnostics;
using Microsoft.ML;
using Ml.Cnn.Samples.Sweep;
using Ml.Cnn.Sweeps;

namespace Ml.Cnn.Bench;

/// <summary>
/// `sweep asha`: the sample's 24-point CNN grid (LeNet-5, 9 epochs, 2,000 embedded training images judged on 1,000
/// test images) run in full and under ASHA (rungs at epochs 1, 3, 9; η = 3), in the same process: best validation
/// accuracy and epochs run by each. `sweep workers`: trials per hour for 1, 2 and 3 local worker processes of the
/// sample on one SQLite study (random sampler, no pruning), the cores shared out among them.
/// </summary>
internal static class SweepBenchmark
{
    private const int TrainRows = 2000, ValidationRows = 1000;

    public static void Run(string[] args)
    {
        string what = args.Length > 1 ? args[1] : "asha";
        string folder = Path.Combine(Path.GetTempPath(), "mlcnn-sweep-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            if (what == "asha") Asha(folder);
            else if (what == "workers") Workers(folder, args.Length > 2 ? int.Parse(args[2]) : 12);
            else throw new ArgumentException($"sweep asha|workers, not '{what}'");
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    private static void Asha(string folder)
    {
        var ml = new MLContext(seed: 1);
        var data = Objectives.Data(ml, "samples/data/fashion-mnist-subset", TrainRows, ValidationRows);
        var storage = StudyStorage.Sqlite(Path.Combine(folder, "asha.db"));
        SweepResult Sweep(string name, IPruner pruner)
        {
            var options = new SweepOptions
            {
                StudyName = name, Storage = storage, SearchSpace = Objectives.CnnSpace(), Sampler = new GridSampler(steps: 3, shuffleSeed: 1),
                Pruner = pruner, RefitBest = false,
            };
            var clock = Stopwatch.StartNew();
            var result = ml.Sweep(trial => Objectives.Cnn(trial, epochs: 9), data.Train, options, data.Validation);
            Console.WriteLine($"{name,-10} {result.Trials.Count} trials, {result.StepsRun,3} epochs, {result.Trials.Count(t => t.State == TrialState.Pruned),2} pruned, " +
                $"{result.Trials.Count(t => t.State == TrialState.Failed)} failed; best validation accuracy {result.Best!.Value:F4} " +
                $"({result.Best.Parameters}); {clock.Elapsed.TotalSeconds:F0} s");
            return result;
        }
        Console.WriteLine($"CNN grid sweep, LeNet-5 ≤ 9 epochs, {TrainRows} training / {ValidationRows} validation images, {Environment.ProcessorCount} threads a trial");
        var grid = Sweep("full-grid", new NoPruner());
        var asha = Sweep("asha", new AshaPruner(minResource: 1, reductionFactor: 3));
        Console.WriteLine($"ASHA: best {asha.Best!.Value:F4} vs the full grid's {grid.Best!.Value:F4} ({(asha.Best.Value - grid.Best.Value) * 100:+0.00;-0.00} points) " +
            $"in {(double)asha.StepsRun / grid.StepsRun:P0} of its epochs; peak working set {Process.GetCurrentProcess().PeakWorkingSet64 >> 20} MiB");
    }

    private static void Workers(string folder, int trials)
    {
        string worker = Path.Combine(AppContext.BaseDirectory, "Ml.Cnn.Samples.Sweep.dll");
        Console.WriteLine($"Local workers on one SQLite study: {trials} CNN trials (LeNet-5, 3 epochs, {TrainRows} images), random sampler");
        foreach (int count in new[] { 1, 2, 3 })
        {
            string storage = Path.Combine(folder, $"workers-{count}.db");
            int threads = Math.Max(1, Environment.ProcessorCount / count);
            var clock = Stopwatch.StartNew();
            var processes = Enumerable.Range(0, count).Select(_ =>
            {
                var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
                foreach (var a in new[] { "exec", worker, "worker", "--storage", storage, "--study", "cnn", "--objective", "cnn", "--sampler", "random",
                    "--trials", $"{trials}", "--epochs", "3", "--threads", $"{threads}", "--train-rows", $"{TrainRows}",
                    "--validation-rows", $"{ValidationRows}", "--data", "samples/data/fashion-mnist-subset", "--out", folder })
                    start.ArgumentList.Add(a);
                var p = Process.Start(start)!;
                p.OutputDataReceived += (_, _) => { };
                p.BeginOutputReadLine();
                return p;
            }).ToList();
            long peak = 0;
            while (processes.Any(p => !p.HasExited))
            {
                foreach (var p in processes.Where(p => !p.HasExited))
                    try { p.Refresh(); peak = Math.Max(peak, p.PeakWorkingSet64); } catch (InvalidOperationException) { }
                Thread.Sleep(200);
            }
            if (processes.Any(p => p.ExitCode != 0)) throw new InvalidOperationException("a worker failed");
            double seconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"{count} worker(s) × {threads} thread(s): {trials} trials in {seconds:F1} s = {trials / seconds * 3600:F0} trials/hour " +
                $"(start-up included); peak working set of one worker {peak >> 20} MiB");
        }
    }
}
