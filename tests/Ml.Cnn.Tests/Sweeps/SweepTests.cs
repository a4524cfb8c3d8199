using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Samples.Sweep;
using Ml.Cnn.Sweeps;
using Xunit;

namespace Ml.Cnn.Tests.Sweeps;

/// <summary>Sweeps through the ML.NET surface, on the embedded Fashion-MNIST subset, as the sample runs them.</summary>
[Collection(SweepsAlone.Name)]
public sealed class SweepTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "mlcnn-sweep-" + Guid.NewGuid().ToString("N"));

    public SweepTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    internal static string EmbeddedData => Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset");

    private StudyStorage Storage => StudyStorage.Sqlite(Path.Combine(_folder, "sweeps.db"));

    [Fact]
    public void AKnnSweepCrossValidatesOnTheSameFoldsAndRefitsTheBest()
    {
        var ml = new MLContext(seed: 1);
        var data = Objectives.Data(ml, EmbeddedData, 400, 200);
        var options = Objectives.Options("knn", Storage, "knn", trials: 8);
        var result = Objectives.Run(ml, "knn", options, data, epochs: 0);

        Assert.Equal(8, result.Trials.Count);
        Assert.All(result.Trials, t => Assert.NotEqual(TrialState.Failed, t.State));
        var best = result.Best!;
        Assert.Equal(5, best.Steps);
        Assert.NotNull(best.ValueStd);
        Assert.InRange(best.Value!.Value, 0.6, 1.0); // ten classes: chance is 0.1
        Assert.Equal(best.Value, result.Trials.Where(t => t.State == TrialState.Complete).Max(t => t.Value));
        // Same folds for every trial: the same parameters score the same again in a new study.
        var again = Objectives.Run(ml, "knn", Objectives.Options("knn", Storage, "knn-again", trials: 8), data, epochs: 0);
        Assert.Equal(result.Trials.Select(t => (t.Parameters.ToJson(), t.Value)), again.Trials.Select(t => (t.Parameters.ToJson(), t.Value)));

        var knn = Assert.IsType<KnnTransformer>(result.BestModel);
        Assert.Equal(best.Parameters.Get<int>("K"), knn.Classifier.K);
        var accuracy = ml.MulticlassClassification.Evaluate(result.BestModel!.Transform(data.Validation)).MicroAccuracy;
        Assert.InRange(accuracy, 0.6, 1.0);

        var table = new StringWriter();
        result.WriteLeaderboard(table);
        Assert.Contains("Study knn: MicroAccuracy (maximized), 8 trials", table.ToString());
        Assert.Contains($"{best.Value:F4} ± {best.ValueStd:F4}", table.ToString());
        var csv = File.ReadAllLines(result.SaveCsv(Path.Combine(_folder, "knn.csv")));
        Assert.Equal("trial,state,K,Distance,Weighting,value,value_std,steps,attempts,seconds,intermediate,message", csv[0]);
        Assert.Equal(9, csv.Length);
        var png = File.ReadAllBytes(result.SavePlot(Path.Combine(_folder, "knn.png")));
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
        Assert.Empty(Directory.GetFiles(_folder, "*.tmp"));
    }

    [Fact]
    public void ACnnSweepPrunesOnEpochsAndRecordsFailedTrialsAndGoesOn()
    {
        var ml = new MLContext(seed: 1);
        var data = Objectives.Data(ml, EmbeddedData, 400, 200);
        var space = new SearchSpace
        {
            ["LearningRate"] = new ChoiceOption(0.05f, 0.002f, 1e4f, 0.01f, 0.0005f, 0.03f),
            ["Optimizer"] = new ChoiceOption("Sgd"),
        };
        var options = new SweepOptions
        {
            StudyName = "cnn", Storage = Storage, SearchSpace = space, Sampler = new GridSampler(),
            Pruner = new AshaPruner(minResource: 1, reductionFactor: 2), ParallelTrials = 1,
        };
        var result = ml.Sweep(trial =>
        {
            if (trial.Parameters.Get<float>("LearningRate") == 0.0005f) throw new InvalidOperationException("a factory that throws");
            return Objectives.Cnn(trial, epochs: 4);
        }, data.Train, options, data.Validation);

        var byRate = result.Trials.ToDictionary(t => t.Parameters.Get<float>("LearningRate"));
        Assert.Equal(TrialState.Failed, byRate[1e4f].State);
        Assert.StartsWith("diverged: Training diverged", byRate[1e4f].Message);
        Assert.Equal(TrialState.Failed, byRate[0.0005f].State);
        Assert.Equal("InvalidOperationException: a factory that throws", byRate[0.0005f].Message);
        Assert.Equal(TrialState.Complete, byRate[0.05f].State);
        Assert.Equal(4, byRate[0.05f].Steps);
        // Each epoch's validation accuracy was recorded; the final value is the restored epoch's (the lowest loss).
        Assert.Contains(byRate[0.05f].Intermediate, i => Math.Abs(i.Value - byRate[0.05f].Value!.Value) < 1e-6);
        var pruned = result.Trials.Where(t => t.State == TrialState.Pruned).ToList();
        Assert.NotEmpty(pruned);
        Assert.All(pruned, t => Assert.True(t.Steps is 1 or 2, $"trial {t.Number} pruned after {t.Steps} epochs, not at a rung before the last"));
        Assert.All(pruned, t => Assert.Equal(t.Intermediate[^1].Value, t.Value));
        Assert.True(result.StepsRun < 4 * 4, $"{result.StepsRun} epochs run");
        Assert.NotNull(result.BestModel);
    }

    [Fact]
    public void TrialsPastTheirTimeOrMemoryLimitFailAndTheSweepGoesOn()
    {
        var ml = new MLContext(seed: 1);
        var data = Objectives.Data(ml, EmbeddedData, 200, 100);
        var options = new SweepOptions
        {
            StudyName = "limits", Storage = Storage, Folds = 0, Sampler = new GridSampler(),
            SearchSpace = new SearchSpace { ["What"] = new ChoiceOption("slow", "stubborn", "hog", "quick") },
            TrialTimeLimit = TimeSpan.FromSeconds(2), TrialMemoryLimit = 256L << 20, RefitBest = false,
        };
        var result = ml.Sweep(trial => trial.Parameters.Get<string>("What") switch
        {
            "slow" => trial.ML.MulticlassClassification.Trainers.ConvolutionalNetwork(
                trial.Attach(new CnnTrainerOptions { Architecture = "lenet5", Epochs = 100_000 })),
            "hog" => new MemoryHog(trial.Cancellation),
            "stubborn" => new Stubborn(trial.ML.MulticlassClassification.Trainers.KNearestNeighbors(trial.Attach(new KnnOptions()))),
            _ => trial.ML.MulticlassClassification.Trainers.KNearestNeighbors(trial.Attach(new KnnOptions())),
        }, data.Train, options, data.Validation);
        var byWhat = result.Trials.ToDictionary(t => t.Parameters.Get<string>("What"));
        Assert.Equal((TrialState.Failed, "ran past the time limit of 2 s"), (byWhat["slow"].State, byWhat["slow"].Message));
        // A fit that ignores the trial's cancellation and returns late is failed all the same.
        Assert.Equal((TrialState.Failed, "ran past the time limit of 2 s"), (byWhat["stubborn"].State, byWhat["stubborn"].Message));
        Assert.Equal(TrialState.Failed, byWhat["hog"].State);
        Assert.Contains("over the limit of 256 MiB", byWhat["hog"].Message);
        Assert.Equal(TrialState.Complete, byWhat["quick"].State);
    }

    [Fact]
    public void ParallelTrialsShareTheCoresAndEndWithTheSequentialTrials()
    {
        var ml = new MLContext(seed: 1);
        var data = Objectives.Data(ml, EmbeddedData, 300, 100);
        // KNN trials are so quick that one worker could take them all before the other asks: the first two trials
        // wait for each other, so they can only finish if two workers run them at once.
        // (The factory runs once per fold: each trial signals once.)
        using var firstTwo = new CountdownEvent(2);
        var signalled = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
        IEstimator<ITransformer> Knn(TrialContext trial)
        {
            if (trial.Number is 0 or 1)
            {
                if (signalled.TryAdd(trial.Number, true)) firstTwo.Signal();
                firstTwo.Wait(TimeSpan.FromSeconds(30));
            }
            return Objectives.Knn(trial);
        }
        SweepResult Sweep(string name, int parallel)
        {
            var options = Objectives.Options("knn", Storage, name, trials: 6, sampler: "random");
            (options.ParallelTrials, options.ThreadsPerTrial, options.RefitBest) = (parallel, 1, false);
            return parallel == 1 ? Objectives.Run(ml, "knn", options, data, epochs: 0) : ml.Sweep(Knn, data.Train, options);
        }
        var parallel = Sweep("parallel", 2);
        Assert.Equal(2, parallel.Trials.Select(t => t.Worker).Distinct().Count());
        Assert.Equal(Sweep("sequential", 1).Trials.Select(t => (t.Parameters.ToJson(), t.Value)), parallel.Trials.Select(t => (t.Parameters.ToJson(), t.Value)));
    }

    [Fact]
    public void OptionsThatCannotWorkAreRefusedByName()
    {
        var ml = new MLContext(seed: 1);
        var data = Objectives.Data(ml, EmbeddedData, 50, 20);
        SweepOptions Options() => Objectives.Options("knn", Storage, "refused", trials: 2);
        void Refused(string option, SweepOptions options, IDataView? validation = null) => Assert.Equal(option,
            Assert.Throws<ArgumentOutOfRangeException>(() => ml.Sweep(Objectives.Knn, data.Train, options, validation)).ParamName);
        var o = Options();
        o.ThreadsPerTrial = Environment.ProcessorCount;
        o.ParallelTrials = 2;
        Refused(nameof(SweepOptions.ThreadsPerTrial), o);
        o = Options();
        o.Folds = 1;
        Refused(nameof(SweepOptions.Folds), o);
        Refused(nameof(SweepOptions.Folds), Options(), data.Validation);  // CV and a validation set at once
        var grid = new SweepOptions { Storage = Storage, Sampler = new GridSampler(), SearchSpace = new SearchSpace { ["K"] = new UniformIntOption(1, 2) }, Trials = 3 };
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.Sweep(Objectives.Knn, data.Train, grid, data.Validation));
    }

    /// <summary>An estimator that takes 3 s and no notice of cancellation.</summary>
    private sealed class Stubborn(IEstimator<ITransformer> inner) : IEstimator<ITransformer>
    {
        public ITransformer Fit(IDataView input)
        {
            Thread.Sleep(3000);
            return inner.Fit(input);
        }

        public SchemaShape GetOutputSchema(SchemaShape inputSchema) => inner.GetOutputSchema(inputSchema);
    }

    /// <summary>An estimator whose fit holds 512 MiB until it is cancelled.</summary>
    private sealed class MemoryHog(CancellationToken cancellation) : IEstimator<ITransformer>
    {
        public ITransformer Fit(IDataView input)
        {
            var block = new byte[512 << 20];
            for (int i = 0; i < block.Length; i += 4096) block[i] = 1; // touch every page: the working set grows
            cancellation.WaitHandle.WaitOne(TimeSpan.FromSeconds(30));
            GC.KeepAlive(block);
            cancellation.ThrowIfCancellationRequested();
            throw new InvalidOperationException("the memory limit did not stop the trial");
        }

        public SchemaShape GetOutputSchema(SchemaShape inputSchema) => inputSchema;
    }
}
