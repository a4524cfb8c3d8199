using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Ml.Cnn.Backends;
using Ml.Cnn.Neighbors;

namespace Ml.Cnn.MLNet;

/// <summary>Options of the k-nearest-neighbour trainer.</summary>
public sealed class KnnOptions
{
    /// <summary>Label column: a key type (use <c>MapValueToKey</c>).</summary>
    public string LabelColumnName = "Label";

    /// <summary>Feature column: any known-size vector of Single (raw pixels, or CNN features from <c>CnnFeaturizer</c>).</summary>
    public string FeatureColumnName = "Features";

    /// <summary>Neighbours consulted (used when <see cref="CandidateK"/> is null).</summary>
    public int K = 5;

    /// <summary>The distance (used when <see cref="CandidateDistances"/> is null).</summary>
    public KnnDistance Distance = KnnDistance.Euclidean;

    /// <summary>How votes are weighted.</summary>
    public KnnWeighting Weighting = KnnWeighting.Uniform;

    /// <summary>Values of K to choose from by cross-validation on the training data (null = use <see cref="K"/>).</summary>
    public int[]? CandidateK;

    /// <summary>Distances to choose from by cross-validation (null = use <see cref="Distance"/>).</summary>
    public KnnDistance[]? CandidateDistances;

    /// <summary>Cross-validation folds.</summary>
    public int Folds = 5;

    /// <summary>Seed of the fold assignment.</summary>
    public int Seed = 1;

    /// <summary>CPU threads (0 = all cores).</summary>
    public int Threads;
}

/// <summary>
/// k-nearest-neighbour classification by exact brute-force search, with cross-validated choice of K and distance.
/// <list type="table">
/// <item><term>Machine learning task</term><description>Multiclass classification</description></item>
/// <item><term>Input columns</term><description>Label: key type; Features: known-size vector of Single</description></item>
/// <item><term>Output columns</term><description>Score: vector of Single vote shares; PredictedLabel: the label's key type</description></item>
/// <item><term>Is normalization required?</term><description>Distances use raw values: normalize if features have different scales</description></item>
/// <item><term>GPU</term><description>L2 and cosine distance products on the CUDA device of MLContext.GpuDeviceId (Ml.Cnn.Gpu); L1 and the re-ranking on the CPU</description></item>
/// <item><term>ONNX export / model zip</term><description>Model zip: yes, as an ONNX model holding the training set (loads without Ml.Cnn)</description></item>
/// </list>
/// Ties in distance go to the earlier training row; ties in the vote to the lower class key.
/// </summary>
public sealed class KnnTrainer : IEstimator<KnnTransformer>
{
    private readonly IHostEnvironment? _environment;

    internal KnnTrainer(KnnOptions options, IHostEnvironment? environment = null)
    {
        if ((options.CandidateK ?? [options.K]).Any(k => k < 1))
            throw new ArgumentOutOfRangeException(nameof(options), $"K must be at least 1, got {string.Join(", ", options.CandidateK ?? [options.K])}.");
        if (options.CandidateK is { Length: 0 } || options.CandidateDistances is { Length: 0 })
            throw new ArgumentException("Candidate lists, when given, must not be empty.", nameof(options));
        foreach (var distance in options.CandidateDistances ?? [options.Distance])
            Require(Enum.IsDefined(distance), nameof(KnnOptions.Distance), distance, "is not a distance");
        Require(Enum.IsDefined(options.Weighting), nameof(KnnOptions.Weighting), options.Weighting, "is not a weighting");
        Require(options.Folds >= 2, nameof(KnnOptions.Folds), options.Folds, "must be at least 2");
        Require(options.Threads >= 0, nameof(KnnOptions.Threads), options.Threads, "must be 0 (all cores) or positive");
        Require(options.LabelColumnName is not null, nameof(KnnOptions.LabelColumnName), "null", "must name a column");
        Require(options.FeatureColumnName is not null, nameof(KnnOptions.FeatureColumnName), "null", "must name a column");
        Options = options;
        _environment = environment;
    }

    /// <summary>The options this trainer was created with.</summary>
    public KnnOptions Options { get; }

    private static void Require(bool condition, string option, object value, string rule) =>
        Training.TrainerOptions.Require(condition, option, value, rule);

    /// <inheritdoc />
    public KnnTransformer Fit(IDataView input)
    {
        var (features, labels, dimension, classes) = DataViewReader.ReadKeyedVectors(input, Options.FeatureColumnName, Options.LabelColumnName);
        var candidateK = Options.CandidateK ?? [Options.K];
        var candidateDistances = Options.CandidateDistances ?? [Options.Distance];
        if (candidateK.Max() > labels.Length)
            throw new ArgumentOutOfRangeException(nameof(input), $"K ({candidateK.Max()}) is larger than the training set ({labels.Length} rows).");
        // MLContext.GpuDeviceId puts the training vectors and the search's products on that device, as for the CNN trainers.
        var backend = CnnTraining.BackendFor(Options.Threads, _environment);
        var device = backend is HostBackend ? null : backend;
        try
        {
            IReadOnlyList<KnnCandidateResult> table = [];
            int k = candidateK[0];
            var distance = candidateDistances[0];
            if (candidateK.Length > 1 || candidateDistances.Length > 1)
            {
                table = KnnClassifier.CrossValidate(features, labels, dimension, classes, candidateK, candidateDistances, Options.Weighting,
                    Options.Folds, (ulong)Options.Seed, Options.Threads, device);
                // Best mean accuracy; among equals, the first candidate as the user listed them.
                var best = table.OrderByDescending(r => r.MeanAccuracy)
                    .ThenBy(r => Array.IndexOf(candidateDistances, r.Distance)).ThenBy(r => Array.IndexOf(candidateK, r.K)).First();
                (k, distance) = (best.K, best.Distance);
            }
            var classifier = new KnnClassifier(features, labels, dimension, classes, k, distance, Options.Weighting, Options.Threads, device);
            var label = input.Schema[Options.LabelColumnName];
            return new KnnTransformer(classifier, table, Options.FeatureColumnName, (KeyDataViewType)label.Type, label.Annotations);
        }
        catch
        {
            // A failed fit returns no model to hold the device's memory: release it now, as the CNN trainers do.
            (device as IDisposable)?.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var features = CnnTraining.Find(inputSchema, Options.FeatureColumnName, "Feature");
        if (features.Kind != SchemaShape.Column.VectorKind.Vector || features.ItemType != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Feature column '{Options.FeatureColumnName}' must be a known-size vector of Single, got {features.Kind} of {features.ItemType}.");
        return CnnTraining.ClassifierOutputShape(inputSchema, Options.LabelColumnName);
    }
}

/// <summary>A fitted k-nearest-neighbour classifier: appends <c>Score</c> (vote shares) and <c>PredictedLabel</c>.</summary>
public sealed class KnnTransformer : ScoringTransformer, ISingleFeaturePredictionTransformer<KnnClassifier>
{
    internal KnnTransformer(KnnClassifier classifier, IReadOnlyList<KnnCandidateResult> table, string featureColumnName,
        KeyDataViewType labelType, DataViewSchema.Annotations labelAnnotations)
    {
        Classifier = classifier;
        CrossValidationResults = table;
        Scorer = new BatchScorer(featureColumnName, classifier.Dimension, classifier.ClassCount,
            ClassifierColumns.Create(labelType, labelAnnotations),
            (inputs, count, outputs) => classifier.Score(inputs, count).CopyTo(outputs, 0), batchSize: 1024);
    }

    /// <summary>The stored training set and the chosen K, distance and weighting.</summary>
    public KnnClassifier Classifier { get; }

    /// <summary>The fitted classifier, as ML.NET's prediction transformers expose their model (the same as <see cref="Classifier"/>).</summary>
    public KnnClassifier Model => Classifier;

    /// <summary>Mean ± standard deviation of cross-validated accuracy per candidate (empty without candidates).</summary>
    public IReadOnlyList<KnnCandidateResult> CrossValidationResults { get; }

    private protected override BatchScorer Scorer { get; }

    private protected override void Release()
    {
        var device = Classifier.Device; // the fit opened it (MLContext.GpuDeviceId) for this model alone
        Classifier.Dispose();
        (device as IDisposable)?.Dispose();
    }

    /// <remarks>The zip holds the training set (as the fitted model does), inside an ONNX model that repeats the search.</remarks>
    private protected override ITransformer ToPersistable() =>
        ZipPersistence.Classifier(Onnx.KnnOnnxExporter.BuildRowScorer(Classifier, Scorer.InputColumn, "Score", ZipPersistence.ClassIndexColumn), Scorer);
}
