using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Training;
using Xunit;

namespace Ml.Cnn.Tests.MLNet;

public sealed class InputErrorAndFeaturizerTests
{
    private sealed class Row
    {
        [VectorType(16)] public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    private sealed class RegressionRow
    {
        [VectorType(16)] public float[] Features { get; set; } = [];
        public float Label { get; set; }
    }

    private static CnnTrainerOptions Tiny(int epochs = 1) => new()
    {
        Network = classes => Ml.Cnn.Networks.NetworkBuilder.Sequential(new Ml.Cnn.Layers.Conv2d(4, 3, padding: 1), new Ml.Cnn.Layers.Relu(),
            new Ml.Cnn.Layers.Flatten(), new Ml.Cnn.Layers.Dense(classes)),
        Epochs = epochs, BatchSize = 8, Optimizer = OptimizerKind.Adam, LearningRate = 0.01f,
    };

    private static List<Row> Rows(int count) => Enumerable.Range(0, count)
        .Select(i => new Row { Features = Enumerable.Range(0, 16).Select(j => (float)((i * 7 + j * 3) % 5)).ToArray(), Label = (i % 3).ToString() }).ToList();

    [Fact]
    public void LabelThatIsNotAKeySaysHowToFixIt()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(8).Select(r => new RegressionRow { Features = r.Features, Label = 1 }));
        var error = Assert.ThrowsAny<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.ConvolutionalNetwork(Tiny()).Fit(data));
        Assert.Contains("'Label'", error.Message);
        Assert.Contains("MapValueToKey", error.Message);
        Assert.Contains("Single", error.Message);
    }

    [Fact]
    public void FeatureSizeThatIsNotTheImageShape()
    {
        var ml = new MLContext(seed: 1);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions { ImageChannels = 1, ImageHeight = 5, ImageWidth = 5, Epochs = 1 }));
        var error = Assert.ThrowsAny<ArgumentOutOfRangeException>(() => pipeline.Fit(ml.Data.LoadFromEnumerable(Rows(8))));
        Assert.Contains("'Features' has 16 values", error.Message);
        Assert.Contains("needs 25", error.Message);
    }

    [Fact]
    public void EmptyTrainingSet()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(8));
        var empty = ml.Data.SkipRows(ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data), 1000);
        var error = Assert.ThrowsAny<InvalidOperationException>(() => ml.MulticlassClassification.Trainers.ConvolutionalNetwork(Tiny()).Fit(empty));
        Assert.Contains("empty", error.Message);
    }

    [Fact]
    public void NaNFeaturesNameTheRowAndColumn()
    {
        var ml = new MLContext(seed: 1);
        var rows = Rows(8);
        rows[5].Features[3] = float.NaN;
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(Tiny()));
        var error = Assert.ThrowsAny<InvalidOperationException>(() => pipeline.Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Contains("Row 5", error.Message);
        Assert.Contains("'Features'", error.Message);
        Assert.Contains("NaN", error.Message);
    }

    [Fact]
    public void ScoringDataWithAnotherFeatureSize()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(Tiny()))
            .Fit(ml.Data.LoadFromEnumerable(Rows(16)));
        var wrong = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 2).Select(_ => new { Features = new float[9], Label = "0" }),
            SchemaDefinitionFor9());
        var error = Assert.ThrowsAny<ArgumentOutOfRangeException>(() => model.Transform(wrong));
        Assert.Contains("16", error.Message);
        Assert.Contains("Vector<Single, 9>", error.Message);
    }

    private static SchemaDefinition SchemaDefinitionFor9()
    {
        var definition = SchemaDefinition.Create(new { Features = new float[9], Label = "0" }.GetType());
        definition["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 9);
        return definition;
    }

    [Fact]
    public void TransformersOfOneModelScoreAtOnceFromManyThreads()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(64));
        var classifier = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(Tiny(2)))
            .Fit(data).LastTransformer;
        var featurizer = ml.Transforms.CnnFeaturizer(classifier.Model, "relu1", "CnnFeatures").Fit(data);
        var scores = classifier.Transform(data).GetColumn<float[]>("Score").ToArray();
        var features = featurizer.Transform(data).GetColumn<float[]>("CnnFeatures").ToArray();
        // Both share the model's network and its activation buffers; run together they must not see each other's.
        Parallel.For(0, 8, i =>
        {
            if (i % 2 == 0) Assert.Equal(scores, classifier.Transform(data).GetColumn<float[]>("Score").ToArray());
            else Assert.Equal(features, featurizer.Transform(data).GetColumn<float[]>("CnnFeatures").ToArray());
        });
    }

    [Fact]
    public void FeaturizerOutputsTheLayerActivationsDeterministically()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(24));
        var trained = (ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(Tiny(2))).Fit(data))
            .LastTransformer.Model;
        var featurizer = ml.Transforms.CnnFeaturizer(trained, "relu1", "CnnFeatures").Fit(data);
        var output = featurizer.Transform(data);
        Assert.Equal(4 * 4 * 4, ((VectorDataViewType)output.Schema["CnnFeatures"].Type).Size);
        float[][] Read() => output.GetColumn<float[]>("CnnFeatures").ToArray();
        var first = Read();
        Assert.Equal(first, Read());
        Assert.Contains(first, f => f.Any(v => v > 0));
        Assert.Contains("relu1", Assert.Throws<KeyNotFoundException>(() => ml.Transforms.CnnFeaturizer(trained, "nope")).Message);

        // Its features feed any ML.NET trainer.
        var downstream = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(featureColumnName: "CnnFeatures"));
        var metrics = ml.MulticlassClassification.Evaluate(downstream.Fit(output).Transform(output));
        Assert.InRange(metrics.MicroAccuracy, 0.0, 1.0);
    }

    [Fact]
    public void RegressionTrainerFitsAScalarTarget()
    {
        var ml = new MLContext(seed: 1);
        // Target: mean brightness of the image, which a tiny CNN learns easily.
        var rows = Enumerable.Range(0, 64).Select(i =>
        {
            var f = Enumerable.Range(0, 16).Select(j => (float)(((i * 13 + j * 5) % 11) / 10.0)).ToArray();
            return new RegressionRow { Features = f, Label = f.Average() };
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = Tiny(60);
        options.Loss = LossKind.MeanSquaredError;
        var model = ml.Regression.Trainers.ConvolutionalNetwork(options).Fit(data);
        var metrics = ml.Regression.Evaluate(model.Transform(data));
        Assert.True(metrics.RSquared > 0.8, $"R² {metrics.RSquared}");
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.Regression.Trainers.ConvolutionalNetwork(new CnnTrainerOptions { Loss = LossKind.SoftmaxCrossEntropy }));
    }

    [Fact]
    public void SchemaShapeAdapterStillWorksWithThisMLNet()
    {
        // Fails loudly if ML.NET renames SchemaShape.Create or changes what it reports for our column types.
        var builder = new DataViewSchema.Builder();
        builder.AddColumn("Score", new VectorDataViewType(NumberDataViewType.Single, 3));
        builder.AddColumn("PredictedLabel", new KeyDataViewType(typeof(uint), 3));
        var shape = SchemaShapeAdapter.ShapeOf(builder.ToSchema());
        Assert.Equal(SchemaShape.Column.VectorKind.Vector, shape[0].Kind);
        Assert.Equal(NumberDataViewType.Single, shape[0].ItemType);
        Assert.True(shape[1].IsKey);
        Assert.Equal(NumberDataViewType.UInt32, shape[1].ItemType);
    }
}
