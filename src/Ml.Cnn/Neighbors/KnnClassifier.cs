using Ml.Cnn.Backends;
using Ml.Cnn.Core;

namespace Ml.Cnn.Neighbors;

/// <summary>How neighbours' votes are weighted.</summary>
public enum KnnWeighting
{
    /// <summary>One vote each.</summary>
    Uniform,
    /// <summary>Votes weighted by 1 / distance; neighbours at distance 0, if any, take all the weight (scikit-learn's rule).</summary>
    InverseDistance,
}

/// <summary>One row of a cross-validation table: a candidate setting and its accuracy over the folds.</summary>
public sealed record KnnCandidateResult(int K, KnnDistance Distance, double MeanAccuracy, double StdAccuracy);

/// <summary>
/// A k-nearest-neighbour classifier over stored training vectors. Scores are the classes' vote shares; the
/// prediction is the class with the largest share, ties going to the lowest class index (as scipy's mode does).
/// </summary>
public sealed class KnnClassifier : IDisposable
{
    /// <summary>
    /// Stores the training set; labels are class indices in [0, classCount). With a device <paramref name="backend"/>
    /// (the GPU's) the training vectors also go there, and the products of L2 and cosine searches run on it.
    /// </summary>
    public KnnClassifier(float[] features, float[] labels, int dimension, int classCount, int k, KnnDistance distance, KnnWeighting weighting,
        int threads = 0, IBackend? backend = null)
    {
        int count = labels.Length;
        if (features.Length != count * dimension) throw new ArgumentException($"{count} labels need {count * dimension} feature values, got {features.Length}.", nameof(features));
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "K must be at least 1.");
        if (k > count) throw new ArgumentOutOfRangeException(nameof(k), k, $"K ({k}) is larger than the training set ({count} rows).");
        Features = features;
        Labels = labels;
        Dimension = dimension;
        ClassCount = classCount;
        K = k;
        Distance = distance;
        Weighting = weighting;
        Threads = threads;
        Prepared = KnnSearch.PreparedReferences.Create(features, count, dimension, distance, backend);
    }

    /// <summary>The device the searches' products run on; null on the host.</summary>
    public IBackend? Device => Prepared.Device?.Backend;

    /// <summary>Releases the training vectors' device copy, if any.</summary>
    public void Dispose() => Prepared.Dispose();

    internal KnnSearch.PreparedReferences Prepared { get; }

    /// <summary>Training vectors, row after row.</summary>
    public float[] Features { get; }
    /// <summary>Training class indices.</summary>
    public float[] Labels { get; }
    /// <summary>Vector length.</summary>
    public int Dimension { get; }
    /// <summary>Number of classes.</summary>
    public int ClassCount { get; }
    /// <summary>Neighbours consulted.</summary>
    public int K { get; }
    /// <summary>The distance.</summary>
    public KnnDistance Distance { get; }
    /// <summary>The vote weighting.</summary>
    public KnnWeighting Weighting { get; }
    /// <summary>Threads used (0 = all cores).</summary>
    public int Threads { get; }

    /// <summary>Vote shares of each class for <paramref name="count"/> queries, query after query.</summary>
    public float[] Score(float[] queries, int count)
    {
        var (indices, distances) = KnnSearch.Search(Prepared, queries, count, K, Threads);
        return Vote(indices, distances, count, K, K, Labels, ClassCount, Weighting);
    }

    /// <summary>Vote shares using the first <paramref name="k"/> of each query's <paramref name="stride"/> sorted neighbours.</summary>
    internal static float[] Vote(int[] indices, float[] distances, int count, int stride, int k, float[] labels, int classes, KnnWeighting weighting)
    {
        var scores = new float[count * classes];
        for (int q = 0; q < count; q++)
        {
            var row = scores.AsSpan(q * classes, classes);
            bool exactMatch = weighting == KnnWeighting.InverseDistance && Enumerable.Range(0, k).Any(n => distances[q * stride + n] == 0);
            double total = 0;
            for (int n = 0; n < k; n++)
            {
                float d = distances[q * stride + n];
                double weight = weighting == KnnWeighting.Uniform ? 1 : exactMatch ? (d == 0 ? 1 : 0) : 1 / (double)d;
                row[(int)labels[indices[q * stride + n]]] += (float)weight;
                total += weight;
            }
            for (int c = 0; c < classes; c++) row[c] = (float)(row[c] / total);
        }
        return scores;
    }

    /// <summary>
    /// k-fold cross-validation of every (K, distance) candidate on the training data, the way the lectures choose K:
    /// neighbours are searched once per fold and distance with the largest K, and every K is read off that list.
    /// </summary>
    public static IReadOnlyList<KnnCandidateResult> CrossValidate(float[] features, float[] labels, int dimension, int classCount,
        IReadOnlyList<int> candidateK, IReadOnlyList<KnnDistance> candidateDistances, KnnWeighting weighting, int folds, ulong seed, int threads = 0,
        IBackend? backend = null)
    {
        int count = labels.Length;
        if (folds < 2) throw new ArgumentOutOfRangeException(nameof(folds), folds, "Cross-validation needs at least 2 folds.");
        if (folds > count) throw new ArgumentOutOfRangeException(nameof(folds), folds, $"{folds} folds need at least as many rows, got {count}.");
        int maxK = candidateK.Max();
        int smallestTrainingFold = count - (count + folds - 1) / folds;
        if (candidateK.Min() < 1) throw new ArgumentOutOfRangeException(nameof(candidateK), candidateK.Min(), "K must be at least 1.");
        if (maxK > smallestTrainingFold)
            throw new ArgumentOutOfRangeException(nameof(candidateK), maxK, $"K ({maxK}) is larger than a cross-validation training fold ({smallestTrainingFold} rows).");
        var order = Enumerable.Range(0, count).ToArray();
        new Rng(seed).Shuffle(order.AsSpan());
        var accuracies = new Dictionary<(int, KnnDistance), List<double>>();
        for (int fold = 0; fold < folds; fold++)
        {
            int start = (int)((long)count * fold / folds), end = (int)((long)count * (fold + 1) / folds);
            var test = order[start..end];
            var train = order[..start].Concat(order[end..]).ToArray();
            var (trainFeatures, trainLabels) = Gather(features, labels, dimension, train);
            var (testFeatures, testLabels) = Gather(features, labels, dimension, test);
            foreach (var distance in candidateDistances.Distinct())
            {
                var (indices, distances) = KnnSearch.Search(trainFeatures, train.Length, testFeatures, test.Length, dimension, maxK, distance, threads,
                    backend);
                foreach (int k in candidateK.Distinct())
                {
                    var scores = Vote(indices, distances, test.Length, maxK, k, trainLabels, classCount, weighting);
                    int correct = Enumerable.Range(0, test.Length).Count(q => Scores.ArgMax(scores.AsSpan(q * classCount, classCount)) == (int)testLabels[q]);
                    if (!accuracies.TryGetValue((k, distance), out var list)) accuracies[(k, distance)] = list = [];
                    list.Add((double)correct / test.Length);
                }
            }
        }
        return accuracies.Select(kv =>
        {
            double mean = kv.Value.Average();
            double std = Math.Sqrt(kv.Value.Sum(a => (a - mean) * (a - mean)) / kv.Value.Count);
            return new KnnCandidateResult(kv.Key.Item1, kv.Key.Item2, mean, std);
        }).OrderBy(r => r.Distance).ThenBy(r => r.K).ToList();
    }

    private static (float[] Features, float[] Labels) Gather(float[] features, float[] labels, int dimension, int[] rows)
    {
        var f = new float[rows.Length * dimension];
        var l = new float[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            features.AsSpan(rows[i] * dimension, dimension).CopyTo(f.AsSpan(i * dimension, dimension));
            l[i] = labels[rows[i]];
        }
        return (f, l);
    }
}
