using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.MLNet;

/// <summary>
/// How a model takes an image column (ImageAnalytics' <c>MLImage</c>, as <c>LoadImages</c> produces it) rather than
/// pixel vectors: each image is resized to the network's input (<c>ResizeImages</c>), made grey for a one-channel
/// network (<c>ConvertToGrayscale</c>) and extracted as channels-first red, green and blue planes (or the grey one)
/// scaled to [0, 1] (<c>ExtractPixels</c>). These are ML.NET's own transforms, recorded in the model and run the same
/// way in training, in scoring and inside saved model zips, so scoring sees the pixels training saw.
/// </summary>
public sealed class ImageInput
{
    /// <summary>The factor pixel bytes are multiplied by (0–255 becomes 0–1).</summary>
    public const float Scale = 1f / 255;

    internal ImageInput(TensorShape shape, ImageResizingEstimator.ResizingKind resizing)
    {
        Shape = shape;
        Resizing = resizing;
    }

    /// <summary>The network's input [C, H, W]: 1 channel (grey) or 3 (red, green, blue), height and width in pixels.</summary>
    public TensorShape Shape { get; }

    /// <summary>How images of another aspect ratio are fitted to the input size (ML.NET's default: crop the centre).</summary>
    public ImageResizingEstimator.ResizingKind Resizing { get; }

    /// <summary>Whether a column holds images (and so needs an <see cref="ImageInput"/>).</summary>
    internal static bool IsImage(DataViewType type) => type is ImageDataViewType;

    /// <summary>
    /// The input the trainer's options and the image column call for: the stated ImageChannels × ImageHeight ×
    /// ImageWidth, else the starting network's input, else the column's fixed image size in 3 channels.
    /// </summary>
    internal static ImageInput For(CnnTrainerOptions options, ImageDataViewType column)
    {
        var network = options.StartingNetwork?.InputShape;
        int channels = options.ImageChannels > 0 ? options.ImageChannels : network?[0] ?? 3;
        int height = options.ImageHeight > 0 ? options.ImageHeight : network?[1] ?? column.Height;
        int width = options.ImageWidth > 0 ? options.ImageWidth : network?[2] ?? column.Width;
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(options), channels,
                $"Images in column '{options.FeatureColumnName}' train as 1 (grey) or 3 (red, green, blue) channels, not {channels}.");
        if (height <= 0 || width <= 0)
            throw new ArgumentOutOfRangeException(nameof(options),
                $"Column '{options.FeatureColumnName}' holds images of any size: set ImageHeight and ImageWidth to the size the " +
                "network takes (each image is resized to it), or resize them before the trainer (ResizeImages).");
        return new ImageInput(new TensorShape(channels, height, width), ImageResizingEstimator.ResizingKind.IsoCrop);
    }

    /// <summary>The column of extracted pixels that the network reads for images in <paramref name="imageColumn"/>.</summary>
    internal static string PixelColumn(string imageColumn) => imageColumn + ".Pixels";

    /// <summary>Fits the resize-and-extract transforms for <paramref name="imageColumn"/> on <paramref name="data"/>'s schema.</summary>
    internal Preparation Prepare(IDataView data, string imageColumn)
    {
        var ml = new MLContext(seed: 0);
        string resized = imageColumn + ".Resized", grey = imageColumn + ".Grey", pixels = PixelColumn(imageColumn);
        foreach (var name in new[] { resized, grey, pixels })
            if (data.Schema.GetColumnOrNull(name) is not null)
                throw new ArgumentOutOfRangeException(nameof(data), $"The input has a column '{name}', the name the image preparation of '{imageColumn}' uses.");
        IEstimator<ITransformer> chain = ml.Transforms.ResizeImages(resized, Shape[2], Shape[1], imageColumn, Resizing);
        string source = resized;
        if (Shape[0] == 1)
        {
            chain = chain.Append(ml.Transforms.ConvertToGrayscale(grey, resized));
            source = grey;
        }
        chain = chain.Append(ml.Transforms.ExtractPixels(pixels, source,
            Shape[0] == 1 ? ImagePixelExtractingEstimator.ColorBits.Red : ImagePixelExtractingEstimator.ColorBits.Rgb,
            interleavePixelColors: false, scaleImage: Scale));
        var transformer = chain.Fit(data);
        string[] temporary = Shape[0] == 1 ? [resized, grey, pixels] : [resized, pixels];
        return new Preparation(imageColumn, pixels, transformer, ml.Transforms.DropColumns(temporary).Fit(transformer.Transform(data)));
    }

    /// <summary>The fitted transforms: <see cref="Transformer"/> adds the pixel column, <see cref="Drop"/> removes what it added.</summary>
    internal sealed record Preparation(string ImageColumn, string PixelColumn, ITransformer Transformer, ITransformer Drop);
}
