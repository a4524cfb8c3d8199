using Microsoft.ML;
using Ml.Cnn.MLNet;
using Ml.Cnn.Samples.Sweep;
using Ml.Cnn.Sweeps;

// Usage:
//   (no verb)  sweeps KNN (5-fold CV) and the CNN (validation set, ASHA) on the embedded data, prints the
//              leaderboards, writes CSV + PNG per study and the best CNN's model zip. Run it again and it resumes.
//   worker     joins one study and runs its trials until the study is finished (start as many as you like).
// Options: --storage FILE|"Host=…" (default sweep-output/sweeps.db)  --study NAME  --objective cnn|knn
//          --trials N  --epochs N (CNN, default 9)  --train-rows N (2000)  --validation-rows N (1000)
//          --sampler tpe|random  --parallel N (trials at once)  --threads N (per trial)  --lease SECONDS  --out DIR  --fresh  --data DIR
var options = ParseOptions(args.Length > 0 && !args[0].StartsWith("--") ? args[1..] : args);
string verb = args.Length > 0 && !args[0].StartsWith("--") ? args[0] : "sweep";
string output = Value("out", "sweep-output");
Directory.CreateDirectory(output);
var storage = StudyStorage.Parse(Value("storage", Path.Combine(output, "sweeps.db")));
int epochs = int.Parse(Value("epochs", "9"));
var ml = new MLContext(seed: 1);
var data = Objectives.Data(ml, Value("data", Objectives.EmbeddedData), int.Parse(Value("train-rows", "2000")),
    int.Parse(Value("validation-rows", "1000")));

if (verb == "worker")
{
    string objective = Value("objective", "cnn");
    var sweep = Configure(Objectives.Options(objective, storage, Value("study", objective), Trials(), sampler: Value("sampler", "tpe")));
    sweep.RefitBest = false;
    sweep.Progress = new Lines(t => Console.WriteLine($"trial {t.Number} {t.State} {t.Value}"));
    var result = Objectives.Run(ml, objective, sweep, data, epochs);
    Console.WriteLine($"worker done: study '{sweep.StudyName}' has {result.Trials.Count} trials, best {result.Best?.Value}");
    return 0;
}
if (verb != "sweep") { Console.Error.WriteLine($"Unknown verb '{verb}': use none (a local sweep) or 'worker'."); return 2; }

foreach (var (objective, trials) in new[] { ("knn", 16), ("cnn", 24) })
{
    string study = options.TryGetValue("study", out var name) ? $"{name}-{objective}" : objective;
    if (options.ContainsKey("fresh")) storage.DeleteStudy(study);
    var sweep = Configure(Objectives.Options(objective, storage, study, Trials() ?? trials, sampler: Value("sampler", "tpe")));
    sweep.Progress = new Lines(t => Console.WriteLine(
        $"  {objective} trial {t.Number,2}: {t.State,-8} {t.Value?.ToString("F4") ?? "–",7} after {t.Steps} steps  {t.Parameters}"));
    Console.WriteLine($"Sweeping {objective} in {storage} (study '{study}'):");
    var clock = System.Diagnostics.Stopwatch.StartNew();
    var result = Objectives.Run(ml, objective, sweep, data, epochs);
    result.WriteLeaderboard(top: 10);
    Console.WriteLine($"{objective}: best {sweep.Metric} {result.Best?.Value:F4} ({result.Best?.Parameters}); " +
        $"{result.StepsRun} {(objective == "cnn" ? "epochs" : "folds")} in {clock.Elapsed.TotalSeconds:F0} s");
    Console.WriteLine($"  wrote {result.SaveCsv(Path.Combine(output, $"{study}.csv"))}");
    Console.WriteLine($"  wrote {result.SavePlot(Path.Combine(output, $"{study}.png"))}");
    if (result.BestModel is { } model)
    {
        string zip = Path.Combine(output, $"{study}-best.zip");
        ml.Model.SaveAtomically(model, data.Train.Schema, zip);
        var reloaded = ml.Model.Load(zip, out _);
        var metrics = ml.MulticlassClassification.Evaluate(reloaded.Transform(data.Validation));
        Console.WriteLine($"  wrote {Path.GetFullPath(zip)}: the refit best model, reloaded, scores {metrics.MicroAccuracy:F4} on the validation set");
    }
}
return 0;

SweepOptions Configure(SweepOptions sweep)
{
    if (options.TryGetValue("parallel", out var p)) sweep.ParallelTrials = int.Parse(p);
    if (options.TryGetValue("threads", out var t)) sweep.ThreadsPerTrial = int.Parse(t);
    if (options.TryGetValue("lease", out var l)) sweep.Lease = TimeSpan.FromSeconds(double.Parse(l));
    return sweep;
}

int? Trials() => options.TryGetValue("trials", out var t) ? int.Parse(t) : null;

string Value(string name, string fallback) => options.TryGetValue(name, out var v) ? v : fallback;

static Dictionary<string, string> ParseOptions(string[] args)
{
    var parsed = new Dictionary<string, string>();
    for (int i = 0; i < args.Length; i++)
    {
        if (!args[i].StartsWith("--")) throw new ArgumentException($"Expected an option (--name), got '{args[i]}'.");
        string name = args[i][2..];
        parsed[name] = name == "fresh" ? "" : i + 1 < args.Length ? args[++i] : throw new ArgumentException($"--{name} needs a value.");
    }
    return parsed;
}

/// <summary>Writes each finished trial as it is reported (Progress&lt;T&gt; would post it to the thread pool, out of order).</summary>
internal sealed class Lines(Action<TrialRecord> write) : IProgress<TrialRecord>
{
    private readonly Lock _lock = new();

    public void Report(TrialRecord value)
    {
        lock (_lock) write(value);
    }
}
