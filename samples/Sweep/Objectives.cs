using Microsoft.ML;
using Ml.Cnn.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Neighbors;
using Ml.Cnn.Sweeps;
using Ml.Cnn.Training;

namespace Ml.Cnn.Samples.Sweep;

/// <summary>
/// The two sweeps of the sample, defined once so that the local run, every worker process and the tests that check
/// them agree on the space, sampler, pruner and data: a CNN judged per epoch on a validation set, and KNN judged by
/// 5-fold cross-validation.
/// </summary>
public static class Objectives
{
    /// <summary>The embedded Fashion-MNIST subset, next to the program.</summary>
    public static string EmbeddedData => Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset");

    /// <summary>
    /// The first <paramref name="trainRows"/> training images and <paramref name="validationRows"/> test images, with
    /// the label already a key (what a trainer reads, as for CrossValidate).
    /// </summary>
    public static (IDataView Train, IDataView Validation) Data(MLContext ml, string folder, int trainRows, int validationRows)
    {
        IDataView Load(string set) => ml.Data.LoadFromIdxFiles(Path.Combine(folder, $"{set}-images-idx3-ubyte.gz"),
            Path.Combine(folder, $"{set}-labels-idx1-ubyte.gz"), classNames: Idx.FashionMnistClasses);
        var (train, validation) = (ml.Data.TakeRows(Load("train"), trainRows), ml.Data.TakeRows(Load("t10k"), validationRows));
        var key = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        // Cached: every trial reads the same rows, and the IDX decoding should happen once.
        return (ml.Data.Cache(key.Transform(train)), ml.Data.Cache(key.Transform(validation)));
    }

    /// <summary>The CNN's hyperparameters: optimizer, rate (log scale), batch size, and SGD's momentum only for SGD.</summary>
    public static SearchSpace CnnSpace() => new()
    {
        ["Optimizer"] = new ChoiceOption(OptimizerKind.Sgd, OptimizerKind.Adam),
        ["LearningRate"] = new UniformSingleOption(1e-3f, 0.2f, logBase: true),
        ["BatchSize"] = new ChoiceOption(16, 64),
        ["Momentum"] = new UniformSingleOption(0.5f, 0.95f) { OnlyWhen = ("Optimizer", OptimizerKind.Sgd) },
    };

    /// <summary>LeNet-5 with the trial's parameters, for <paramref name="epochs"/> epochs, wired to the trial.</summary>
    public static IEstimator<ITransformer> Cnn(TrialContext trial, int epochs) =>
        trial.ML.MulticlassClassification.Trainers.ConvolutionalNetwork(
            trial.Attach(trial.Parameters.ApplyTo(new CnnTrainerOptions { Architecture = "lenet5", Epochs = epochs })));

    /// <summary>KNN's hyperparameters: K, the distance and the vote weighting.</summary>
    public static SearchSpace KnnSpace() => new()
    {
        ["K"] = new UniformIntOption(1, 30, logBase: true),
        ["Distance"] = new ChoiceOption(KnnDistance.Euclidean, KnnDistance.Manhattan, KnnDistance.Cosine),
        ["Weighting"] = new ChoiceOption(KnnWeighting.Uniform, KnnWeighting.InverseDistance),
    };

    /// <summary>KNN with the trial's parameters.</summary>
    public static IEstimator<ITransformer> Knn(TrialContext trial) =>
        trial.ML.MulticlassClassification.Trainers.KNearestNeighbors(trial.Attach(trial.Parameters.ApplyTo(new KnnOptions())));

    /// <summary>
    /// The options of a study of <paramref name="objective"/> ("cnn" or "knn"). The "tpe" sampler: TPE after 6 random
    /// trials, the CNN pruned by ASHA on epochs 1, 3, 9 (η = 3), KNN by the median rule on folds; what each trial sees
    /// then depends on which trials finished first. The "random" sampler without pruning: every trial independent of
    /// the others, so any number of workers ends with the same trials as one.
    /// </summary>
    public static SweepOptions Options(string objective, StudyStorage storage, string study, int? trials, int seed = 1, string sampler = "tpe")
    {
        bool tpe = sampler == "tpe" ? true : sampler == "random" ? false
            : throw new ArgumentException($"The sampler is 'tpe' or 'random', not '{sampler}'.", nameof(sampler));
        var options = objective switch
        {
            "cnn" => new SweepOptions { SearchSpace = CnnSpace(), Pruner = tpe ? new AshaPruner(minResource: 1, reductionFactor: 3) : new NoPruner() },
            "knn" => new SweepOptions { SearchSpace = KnnSpace(), Folds = 5, Pruner = tpe ? new MedianPruner(startupTrials: 4) : new NoPruner() },
            _ => throw new ArgumentException($"The objective is 'cnn' or 'knn', not '{objective}'.", nameof(objective)),
        };
        (options.StudyName, options.Storage, options.Trials, options.Seed) = (study, storage, trials, seed);
        options.Sampler = tpe ? new TpeSampler(seed, startupTrials: 6) : new RandomSampler(seed);
        return options;
    }

    /// <summary>Runs one study of <paramref name="objective"/> on <paramref name="data"/>.</summary>
    public static SweepResult Run(MLContext ml, string objective, SweepOptions options, (IDataView Train, IDataView Validation) data, int epochs) =>
        objective == "cnn"
            ? ml.Sweep(trial => Cnn(trial, epochs), data.Train, options, data.Validation)
            : ml.Sweep(Knn, data.Train, options);
}
