using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Training;
using Xunit;

namespace Ml.Cnn.Tests.MLNet;

public sealed class MulticlassTrainerTests
{
    private static IEstimator<ITransformer> Pipeline(MLContext ml, int epochs = 3) =>
        ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions
            {
                Architecture = "lenet5", Epochs = epochs, Optimizer = OptimizerKind.Adam, LearningRate = 2e-3f, BatchSize = 32, Threads = 2,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

    [Fact]
    public void TrainsEvaluatesAndPredictsLikeABuiltInTrainer()
    {
        var ml = new MLContext(seed: 1);
        var model = Pipeline(ml).Fit(FashionData.View(ml, train: true, 2000));
        var scored = model.Transform(FashionData.View(ml, train: false, 500));

        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Assert.InRange(metrics.MacroAccuracy, 0.65, 1.0);
        Assert.InRange(metrics.LogLoss, 0.01, 1.5);
        Assert.Equal(10, metrics.ConfusionMatrix.NumberOfClasses);

        var score = scored.Schema["Score"];
        Assert.Equal(10, ((VectorDataViewType)score.Type).Size);
        var slotNames = default(VBuffer<ReadOnlyMemory<char>>);
        score.GetSlotNames(ref slotNames);
        Assert.Contains("Ankle boot", slotNames.DenseValues().Select(v => v.ToString()));

        var engine = ml.Model.CreatePredictionEngine<FashionRow, FashionPrediction>(model);
        var row = FashionData.Rows(train: false, 1)[0];
        var prediction = engine.Predict(row);
        Assert.Equal(10, prediction.Score.Length);
        Assert.Equal(1f, prediction.Score.Sum(), 4);
        int best = Array.IndexOf(prediction.Score, prediction.Score.Max());
        Assert.Equal(slotNames.GetItemOrDefault(best).ToString(), prediction.PredictedLabel);

        // Row-by-row and batched scoring agree bit for bit: no kernel's summation order depends on the batch size.
        var batched = ml.Data.CreateEnumerable<FashionPrediction>(scored, reuseRowObject: false).First();
        Assert.Equal(batched.Score, prediction.Score);
    }

    [Fact]
    public void CrossValidatesWithThreeFolds()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionData.View(ml, true, 900)).Transform(FashionData.View(ml, true, 900));
        var trainer = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions { Architecture = "lenet5", Epochs = 2, Optimizer = OptimizerKind.Adam, LearningRate = 2e-3f, BatchSize = 32 });
        var results = ml.MulticlassClassification.CrossValidate(data, trainer, numberOfFolds: 3);
        Assert.Equal(3, results.Count);
        Assert.All(results, r => Assert.InRange(r.Metrics.MicroAccuracy, 0.4, 1.0));
    }

    [Fact]
    public void SplitsWithTrainTestSplit()
    {
        var ml = new MLContext(seed: 2);
        var split = ml.Data.TrainTestSplit(FashionData.View(ml, true, 600), testFraction: 0.25);
        var model = Pipeline(ml, epochs: 1).Fit(split.TrainSet);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
        Assert.InRange(metrics.MicroAccuracy, 0.2, 1.0);
    }

    [Fact]
    public void OutputSchemaIsKnownBeforeTraining()
    {
        var ml = new MLContext(seed: 1);
        var data = FashionData.View(ml, true, 10);
        var shape = Pipeline(ml).GetOutputSchema(SchemaShapeAdapter.ShapeOf(data.Schema));
        var score = shape.Single(c => c.Name == "Score");
        Assert.Equal(SchemaShape.Column.VectorKind.Vector, score.Kind);
        Assert.Equal(NumberDataViewType.Single, score.ItemType);
        Assert.Contains(shape, c => c.Name == "PredictedLabel");
    }
}
