using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>
/// Channels [Start, Start + Count) of a [C, H, W] input (one half of a ShuffleNet unit's <c>chunk</c>, ONNX's Slice
/// along channels).
/// </summary>
public sealed class ChannelSlice : Layer
{
    /// <summary>Takes <paramref name="count"/> channels from <paramref name="start"/> on.</summary>
    public ChannelSlice(int start, int count)
    {
        if (start < 0) throw new ArgumentOutOfRangeException(nameof(start), start, "The first channel must not be negative.");
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "A slice takes at least one channel.");
        (Start, Count) = (start, count);
    }

    /// <summary>The first channel taken.</summary>
    public int Start { get; }

    /// <summary>How many channels are taken.</summary>
    public int Count { get; }

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        RequireRank(input, 3, "[C, H, W] images");
        if (Start + Count > input[0]) throw Error($"channels [{Start}, {Start + Count}) are not all within the input's {input[0]}.");
        return new TensorShape(Count, input[1], input[2]);
    }

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        var y = OutputBuffer(x.Shape.N);
        Backend.CopyChannels(x, Start, y, 0, Count);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.Fill(dx, 0);
        Backend.CopyChannels(dy, 0, dx, Start, Count);
        return dx;
    }
}

/// <summary>
/// ShuffleNet's channel shuffle: the channels, seen as Groups rows of C / Groups, are read column by column, so output
/// channel j·Groups + i is input channel i·(C / Groups) + j (PyTorch's view, transpose(1, 2), view).
/// </summary>
public sealed class ChannelShuffle : Layer
{
    /// <summary>Shuffles <paramref name="groups"/> groups of channels.</summary>
    public ChannelShuffle(int groups)
    {
        if (groups < 1) throw new ArgumentOutOfRangeException(nameof(groups), groups, "A shuffle needs at least one group.");
        Groups = groups;
    }

    /// <summary>The number of groups.</summary>
    public int Groups { get; }

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        RequireRank(input, 3, "[C, H, W] images");
        if (input[0] % Groups != 0) throw Error($"{Groups} groups do not divide {input[0]} channels.");
        return input;
    }

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        var y = OutputBuffer(x.Shape.N);
        int perGroup = InputShape[0] / Groups;
        for (int i = 0; i < Groups; i++)
            for (int j = 0; j < perGroup; j++) Backend.CopyChannels(x, i * perGroup + j, y, j * Groups + i, 1);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        var dx = InputGradientBuffer(dy.Shape.N);
        int perGroup = InputShape[0] / Groups;
        for (int i = 0; i < Groups; i++)
            for (int j = 0; j < perGroup; j++) Backend.CopyChannels(dy, j * Groups + i, dx, i * perGroup + j, 1);
        return dx;
    }
}
