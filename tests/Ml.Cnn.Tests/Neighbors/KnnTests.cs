using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.Core;
using Ml.Cnn.MLNet;
using Ml.Cnn.Neighbors;
using Ml.Cnn.Tests.MLNet;
using Xunit;

namespace Ml.Cnn.Tests.Neighbors;

public sealed class KnnTests
{
    private static double NaiveDistance(ReadOnlySpan<float> a, ReadOnlySpan<float> b, KnnDistance distance)
    {
        double sum = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = (double)a[i] - b[i];
            sum += distance switch { KnnDistance.Euclidean => d * d, KnnDistance.Manhattan => Math.Abs(d), _ => (double)a[i] * b[i] };
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
        return distance switch { KnnDistance.Euclidean => Math.Sqrt(sum), KnnDistance.Manhattan => sum, _ => 1 - sum / Math.Sqrt(na * nb) };
    }

    [Theory]
    [InlineData(KnnDistance.Euclidean, 1, 3, 1f)]
    [InlineData(KnnDistance.Euclidean, 7, 37, 1f)]
    [InlineData(KnnDistance.Manhattan, 5, 37, 1f)] // raw pixels: L1 over bytes
    [InlineData(KnnDistance.Manhattan, 5, 70, 1f / 255)] // pixels scaled to [0, 1]: over bytes too
    [InlineData(KnnDistance.Manhattan, 3, 37, 0.37f)] // off every pixel grid: L1 over floats
    [InlineData(KnnDistance.Cosine, 4, 19, 1f)]
    public void SearchEqualsNaiveBruteForce(KnnDistance distance, int k, int dimension, float scale)
    {
        var rng = new Rng(3);
        int references = 3000, queries = 300; // more than one query block and one reference block
        // Pixel levels with duplicated rows, so exact ties occur and must go to the lower index.
        var refLevels = Enumerable.Range(0, references * dimension).Select(_ => rng.NextInt(256)).ToArray();
        for (int d = 0; d < dimension; d++) refLevels[2500 * dimension + d] = refLevels[100 * dimension + d];
        var queryLevels = Enumerable.Range(0, queries * dimension).Select(_ => rng.NextInt(256)).ToArray();
        for (int d = 0; d < dimension; d++) queryLevels[d] = refLevels[100 * dimension + d];
        float[] refs = refLevels.Select(l => l * scale).ToArray(), qs = queryLevels.Select(l => l * scale).ToArray();
        bool bytes = distance == KnnDistance.Manhattan && scale is 1f or 1f / 255;
        Assert.Equal(bytes, KnnSearch.PreparedReferences.Create(refs, references, dimension, distance).Bytes is not null);
        var (indices, distances) = KnnSearch.Search(refs, references, qs, queries, dimension, k, distance, threads: 2);
        // L1 is ranked on the levels, exactly: the scaled values' rounding would break its ties at random.
        float[] rankedRefs = distance == KnnDistance.Manhattan ? refLevels.Select(l => (float)l).ToArray() : refs;
        float[] rankedQueries = distance == KnnDistance.Manhattan ? queryLevels.Select(l => (float)l).ToArray() : qs;
        double unit = distance == KnnDistance.Manhattan ? scale : 1;
        for (int q = 0; q < queries; q++)
        {
            var query = rankedQueries.AsMemory(q * dimension, dimension);
            var expected = Enumerable.Range(0, references)
                .Select(r => (Index: r, Distance: unit * NaiveDistance(query.Span, rankedRefs.AsSpan(r * dimension, dimension), distance)))
                .OrderBy(p => p.Distance).ThenBy(p => p.Index).Take(k).ToArray();
            for (int n = 0; n < k; n++) Assert.Equal(expected[n].Distance, distances[q * k + n], expected[n].Distance * 1e-5 + 1e-4);
            if (distance == KnnDistance.Manhattan && !bytes)
            {
                // Over floats, equal exact sums may round apart: each neighbour found must be one at its distance.
                for (int n = 0; n < k; n++)
                    Assert.Equal(expected[n].Distance, unit * NaiveDistance(query.Span, rankedRefs.AsSpan(indices[q * k + n] * dimension, dimension), distance));
            }
            else Assert.Equal(expected.Select(e => e.Index), indices.AsSpan(q * k, k).ToArray());
        }
        Assert.Equal(100, indices[0]);
        if (k > 1) Assert.Equal(2500, indices[1]);
    }

    [Fact]
    public void PixelGridIsFoundOnlyWhereEveryValueIsOnIt()
    {
        float[] raw = [0, 255, 17, 3], scaled = [0, 1, 17 / 255f, 3 * (1f / 255)];
        Assert.Equal(1f, ByteGrid.TryCreate(raw, 2, 2)!.Step);
        var grid = ByteGrid.TryCreate(scaled, 2, 2)!; // both ways of scaling a pixel
        Assert.Equal(1f / 255, grid.Step);
        Assert.Equal<byte>([0, 255], grid.Values.AsSpan(0, 2).ToArray());
        Assert.Equal<byte>([17, 3], grid.Values.AsSpan(grid.Stride, 2).ToArray());
        foreach (float off in new[] { -1f, 256f, 0.5f, float.NaN, 17.5f / 255 })
            Assert.Null(ByteGrid.TryCreate([0, 1, off, 3], 2, 2));
    }

    [Fact]
    public unsafe void SumsOfAbsoluteDifferencesAreExactOnEveryLength()
    {
        var rng = new Rng(5);
        foreach (int dimension in new[] { 1, 15, 16, 33, 64, 784, 3072 })
        {
            var values = Enumerable.Range(0, 3 * dimension).Select(_ => (float)rng.NextInt(256)).ToArray();
            values[0] = 0; values[2 * dimension] = 255; // the widest difference
            var grid = ByteGrid.TryCreate(values, 3, dimension)!;
            long Naive(int x, int y) => Enumerable.Range(0, dimension).Sum(d => (long)Math.Abs(values[x * dimension + d] - values[y * dimension + d]));
            fixed (byte* v = grid.Values)
            {
                var (d0, d1) = ByteGrid.SumsOfAbsoluteDifferences(v, v + grid.Stride, v + 2 * grid.Stride, grid.Stride);
                Assert.True(Naive(0, 2) == d0 && Naive(1, 2) == d1, $"{ByteGrid.Kernel}, dimension {dimension}");
            }
        }
    }

    [Fact]
    public void QueriesOffTheReferencesGridAreSearchedOverFloats()
    {
        var rng = new Rng(8);
        int references = 500, queries = 20, dimension = 40;
        var refs = Enumerable.Range(0, references * dimension).Select(_ => (float)rng.NextInt(256)).ToArray();
        var qs = Enumerable.Range(0, queries * dimension).Select(_ => rng.NextInt(256) + 0.25f).ToArray();
        var (indices, distances) = KnnSearch.Search(refs, references, qs, queries, dimension, 3, KnnDistance.Manhattan, threads: 2);
        for (int q = 0; q < queries; q++)
        {
            var expected = Enumerable.Range(0, references)
                .Select(r => (Index: r, Distance: NaiveDistance(qs.AsSpan(q * dimension, dimension), refs.AsSpan(r * dimension, dimension), KnnDistance.Manhattan)))
                .OrderBy(p => p.Distance).ThenBy(p => p.Index).First();
            Assert.Equal(expected.Index, indices[q * 3]);
            Assert.Equal(expected.Distance, distances[q * 3], 1e-3);
        }
    }

    [Fact]
    public void VotesAndTieRules()
    {
        float[] labels = [0, 1, 1, 2];
        // One query, neighbours 0, 3, 1 at distances 1, 2, 4.
        int[] indices = [0, 3, 1];
        float[] distances = [1, 2, 4];
        var uniform = KnnClassifier.Vote(indices, distances, 1, 3, 3, labels, 3, KnnWeighting.Uniform);
        Assert.Equal([1f / 3, 1f / 3, 1f / 3], uniform);
        Assert.Equal(0, Ml.Cnn.Core.Scores.ArgMax(uniform)); // a three-way tie goes to the lowest class
        var weighted = KnnClassifier.Vote(indices, distances, 1, 3, 3, labels, 3, KnnWeighting.InverseDistance);
        Assert.Equal([1 / 1.75f, 0.25f / 1.75f, 0.5f / 1.75f], weighted.Select(v => MathF.Round(v, 6)).ToArray(), new FloatTolerance());
        var exact = KnnClassifier.Vote([3, 0, 1], [0, 1, 2], 1, 3, 3, labels, 3, KnnWeighting.InverseDistance);
        Assert.Equal([0f, 0, 1], exact);
    }

    private sealed class FloatTolerance : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) < 1e-5;
        public int GetHashCode(float v) => 0;
    }

    [Fact]
    public void CrossValidationPicksTheKThatSurvivesLabelNoise()
    {
        // Two well-separated clusters with 25% of labels flipped: one neighbour copies the noise, many outvote it.
        var rng = new Rng(8);
        int count = 400;
        var features = new float[count * 2];
        var labels = new float[count];
        for (int i = 0; i < count; i++)
        {
            int cluster = i % 2;
            features[2 * i] = (float)(cluster * 6 + rng.NextGaussian());
            features[2 * i + 1] = (float)rng.NextGaussian();
            labels[i] = rng.NextDouble() < 0.25 ? 1 - cluster : cluster;
        }
        var table = KnnClassifier.CrossValidate(features, labels, 2, 2, [1, 25], [KnnDistance.Euclidean], KnnWeighting.Uniform, 5, 1);
        var k1 = table.Single(r => r.K == 1);
        var k25 = table.Single(r => r.K == 25);
        Assert.InRange(k1.MeanAccuracy, 0.5, 0.7);
        Assert.InRange(k25.MeanAccuracy, 0.7, 0.8);
        Assert.True(k25.StdAccuracy < 0.1);

        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, count).Select(i => new PointRow { Features = [features[2 * i], features[2 * i + 1]], Label = labels[i].ToString() });
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.KNearestNeighbors(new KnnOptions { CandidateK = [1, 25] })).Fit(data);
        Assert.Equal(25, model.LastTransformer.Classifier.K);
        Assert.Equal(2, model.LastTransformer.CrossValidationResults.Count);
    }

    private sealed class PointRow
    {
        [VectorType(2)] public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    [Fact]
    public void ClassifiesFashionMnistPixelsAndCnnFeaturesInAnMLNetPipeline()
    {
        var ml = new MLContext(seed: 1);
        var train = FashionData.View(ml, true, 3000);
        var test = FashionData.View(ml, false, 500);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.KNearestNeighbors(k: 5))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var metrics = ml.MulticlassClassification.Evaluate(pipeline.Fit(train).Transform(test));
        Assert.InRange(metrics.MicroAccuracy, 0.72, 0.9);

        var engine = ml.Model.CreatePredictionEngine<FashionRow, FashionPrediction>(pipeline.Fit(train));
        var prediction = engine.Predict(FashionData.Rows(false, 1)[0]);
        Assert.Equal(1f, prediction.Score.Sum(), 5);
    }

    [Fact]
    public void InputErrors()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 6).Select(i => new PointRow { Features = [i, i], Label = (i % 2).ToString() }));
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
        var tooLarge = Assert.ThrowsAny<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.KNearestNeighbors(k: 7).Fit(keyed));
        Assert.Contains("K (7) is larger than the training set (6 rows)", tooLarge.Message);
        Assert.ThrowsAny<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.KNearestNeighbors(k: 0));
        Assert.Contains("MapValueToKey", Assert.ThrowsAny<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.KNearestNeighbors().Fit(data)).Message);

        var model = ml.MulticlassClassification.Trainers.KNearestNeighbors(k: 3).Fit(keyed);
        var wider = ml.Data.LoadFromEnumerable(new[] { new FashionRow { Features = new float[784], Label = "0" } });
        Assert.Contains("vector of 2 Single", Assert.ThrowsAny<ArgumentOutOfRangeException>(() => model.Transform(wider)).Message);

        var nan = ml.Data.LoadFromEnumerable(new[] { new PointRow { Features = [1, float.NaN], Label = "0" }, new PointRow { Features = [1, 2], Label = "1" } });
        var nanKeyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(nan).Transform(nan);
        Assert.Contains("NaN", Assert.ThrowsAny<InvalidOperationException>(() => ml.MulticlassClassification.Trainers.KNearestNeighbors(k: 1).Fit(nanKeyed)).Message);
    }
}

public sealed class KnnRobustnessTests
{
    [Fact]
    public void EuclideanSurvivesALargeSharedOffset()
    {
        // 1000 + N(0, 1) in 64 dimensions: ‖r‖² ≈ 6.4e7 while neighbours are ~128 apart, far below float resolution of ‖r‖².
        var rng = new Rng(21);
        int references = 2000, queries = 50, dimension = 64, k = 5;
        var refs = Enumerable.Range(0, references * dimension).Select(_ => (float)(1000 + rng.NextGaussian())).ToArray();
        var qs = Enumerable.Range(0, queries * dimension).Select(_ => (float)(1000 + rng.NextGaussian())).ToArray();
        var (indices, _) = KnnSearch.Search(refs, references, qs, queries, dimension, k, KnnDistance.Euclidean, threads: 2);
        for (int q = 0; q < queries; q++)
        {
            var expected = Enumerable.Range(0, references).Select(r =>
            {
                double sum = 0;
                for (int d = 0; d < dimension; d++) { double diff = (double)qs[q * dimension + d] - refs[r * dimension + d]; sum += diff * diff; }
                return (Index: r, Distance: sum);
            }).OrderBy(p => p.Distance).ThenBy(p => p.Index).Take(k).Select(p => p.Index);
            Assert.Equal(expected, indices.AsSpan(q * k, k).ToArray());
        }
    }
}
