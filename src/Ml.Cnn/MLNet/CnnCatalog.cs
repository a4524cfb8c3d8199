using Microsoft.ML;
using Ml.Cnn.Training;

namespace Ml.Cnn.MLNet;

/// <summary>Ml.Cnn's entries in ML.NET's catalogs.</summary>
public static class CnnCatalog
{
    /// <summary>A convolutional-network image classifier (a model-zoo architecture, trained from scratch).</summary>
    public static CnnMulticlassTrainer ConvolutionalNetwork(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = CnnTrainerOptions.Defaults.LabelColumnName, string featureColumnName = CnnTrainerOptions.Defaults.FeatureColumnName,
        string architecture = CnnTrainerOptions.Defaults.Architecture, int epochs = TrainerOptions.Defaults.Epochs) =>
        new(new CnnTrainerOptions { LabelColumnName = labelColumnName, FeatureColumnName = featureColumnName, Architecture = architecture, Epochs = epochs },
            MLContextAccess.EnvironmentOf(catalog));

    /// <summary>A convolutional-network image classifier with every option.</summary>
    public static CnnMulticlassTrainer ConvolutionalNetwork(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, CnnTrainerOptions options) =>
        new(options ?? throw new ArgumentNullException(nameof(options)), MLContextAccess.EnvironmentOf(catalog));

    /// <summary>A convolutional-network image regressor.</summary>
    public static CnnRegressionTrainer ConvolutionalNetwork(this RegressionCatalog.RegressionTrainers catalog,
        string labelColumnName = CnnTrainerOptions.Defaults.LabelColumnName, string featureColumnName = CnnTrainerOptions.Defaults.FeatureColumnName,
        string architecture = CnnTrainerOptions.Defaults.Architecture, int epochs = TrainerOptions.Defaults.Epochs) =>
        new(new CnnTrainerOptions { LabelColumnName = labelColumnName, FeatureColumnName = featureColumnName, Architecture = architecture, Epochs = epochs },
            MLContextAccess.EnvironmentOf(catalog));

    /// <summary>A convolutional-network image regressor with every option.</summary>
    public static CnnRegressionTrainer ConvolutionalNetwork(this RegressionCatalog.RegressionTrainers catalog, CnnTrainerOptions options) =>
        new(options ?? throw new ArgumentNullException(nameof(options)), MLContextAccess.EnvironmentOf(catalog));

    /// <summary>A k-nearest-neighbour classifier (exact search; K and distance optionally chosen by cross-validation).</summary>
    public static KnnTrainer KNearestNeighbors(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label", string featureColumnName = "Features", int k = 5, Neighbors.KnnDistance distance = Neighbors.KnnDistance.Euclidean) =>
        new(new KnnOptions { LabelColumnName = labelColumnName, FeatureColumnName = featureColumnName, K = k, Distance = distance },
            MLContextAccess.EnvironmentOf(catalog));

    /// <summary>A k-nearest-neighbour classifier with every option.</summary>
    public static KnnTrainer KNearestNeighbors(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, KnnOptions options) =>
        new(options ?? throw new ArgumentNullException(nameof(options)), MLContextAccess.EnvironmentOf(catalog));

    /// <summary>The segmentation task: its trainers and its evaluator (pixel accuracy, IoU).</summary>
    public static SegmentationCatalog Segmentation(this MLContext context) =>
        new(context ?? throw new ArgumentNullException(nameof(context)));

    /// <summary>The object-detection task: its trainers and its evaluator (COCO's mAP).</summary>
    public static ObjectDetectionCatalog ObjectDetection(this MLContext context) =>
        new(context ?? throw new ArgumentNullException(nameof(context)));

    /// <summary>The activations of <paramref name="layerName"/> of a trained network, as a vector column.</summary>
    public static CnnFeaturizerEstimator CnnFeaturizer(this TransformsCatalog catalog, CnnModel model, string layerName,
        string outputColumnName = "CnnFeatures", string inputColumnName = "Features") =>
        new(model ?? throw new ArgumentNullException(nameof(model)), layerName, outputColumnName, inputColumnName);
}
