using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Training;

// Arguments: [IDX folder (default: the embedded subset)] [epochs] [output folder]
string data = args.Length > 0 ? args[0] : "samples/data/fashion-mnist-subset";
int epochs = args.Length > 1 ? int.Parse(args[1]) : 10;
string output = args.Length > 2 ? args[2] : ".";
var ml = new MLContext(seed: 1);
IDataView Load(string set) => ml.Data.LoadFromIdxFiles(Path.Combine(data, $"{set}-images-idx3-ubyte.gz"),
    Path.Combine(data, $"{set}-labels-idx1-ubyte.gz"), classNames: Idx.FashionMnistClasses);
var (train, test) = (Load("train"), Load("t10k"));

var trainer = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions
{
    Architecture = "lenet5", Epochs = epochs, Optimizer = OptimizerKind.Adam, LearningRate = 1e-3f,
    ValidationFraction = 0.1f, EarlyStoppingPatience = 3,
    Augmentation = new Augmentation { HorizontalFlip = true, CropPadding = 2 },
});
var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(trainer)
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
var model = pipeline.Fit(train);
var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));  // accuracy, log-loss, confusion matrix
Console.WriteLine($"test accuracy {metrics.MicroAccuracy:P2}, log-loss {metrics.LogLoss:F3}");

var cnn = model.OfType<CnnMulticlassTransformer>().Single();  // the CNN inside the fitted chain
Console.WriteLine(cnn.Model.Network.Summary());

var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(train);
var folds = ml.MulticlassClassification.CrossValidate(keyed, trainer, numberOfFolds: 3);
Console.WriteLine($"3-fold accuracy {folds.Average(f => f.Metrics.MicroAccuracy):P2}");

var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(model);  // Score (probabilities), PredictedLabel
var image = ml.Data.CreateEnumerable<Row>(test, reuseRowObject: false).First();
Console.WriteLine($"first test image: {engine.Predict(image).PredictedLabel} (labelled {image.Label})");

string zip = Path.Combine(output, "model.zip");
ml.Model.SaveAtomically(model, train.Schema, zip);  // an ordinary ML.NET zip: loads without Ml.Cnn
var reloaded = ml.Model.LoadModel(zip, out _);
Console.WriteLine($"reloaded: test accuracy {ml.MulticlassClassification.Evaluate(reloaded.Transform(test)).MicroAccuracy:P2}");

public sealed class Row
{
    [VectorType(1, 28, 28)] public float[] Features { get; set; } = [];
    public string Label { get; set; } = "";
}

public sealed class Prediction
{
    public float[] Score { get; set; } = [];
    public string PredictedLabel { get; set; } = "";
}
