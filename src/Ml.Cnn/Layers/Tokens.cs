using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

// A vision transformer's token sequence is kept as a [C, 1, T] image: each token a position, its features the
// channels. Per-position layers (1×1 convolutions, LayerNorm over channels, GELU) then act on tokens as they are.

/// <summary>
/// Prepends a learned class token to the positions of its input (ViT's <c>class_token</c>): [C, H, W] becomes the
/// [C, 1, 1 + H·W] sequence of the token followed by the positions in row-major order.
/// </summary>
public sealed class ClassToken : Layer
{
    /// <summary>The token, [C]; starts at 0 as torchvision's does.</summary>
    public Parameter Token { get; private set; } = null!;

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        RequireRank(input, 3, "[C, H, W] images or [C, 1, T] token sequences");
        Token = AddParameter("token", new TensorShape(input[0]), decays: false);
        return new TensorShape(input[0], 1, 1 + input[1] * input[2]);
    }

    private Tensor Positions(Tensor t) => t.Reshape(new TensorShape(t.Shape.N, InputShape[0], 1, InputShape[1] * InputShape[2]));

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        var y = OutputBuffer(x.Shape.N);
        var token = Buffer("token", new TensorShape(x.Shape.N, InputShape[0], 1, 1));
        Backend.Fill(token, 0);
        Backend.AddChannelBias(Token.Value, token);
        Backend.CopyWindow(token, 0, 0, y, 0, 0, 1, 1);
        Backend.CopyWindow(Positions(x), 0, 0, y, 0, 1, 1, OutputShape[2] - 1);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        var dToken = Buffer("token", new TensorShape(dy.Shape.N, InputShape[0], 1, 1));
        Backend.CopyWindow(dy, 0, 0, dToken, 0, 0, 1, 1);
        Backend.ChannelSums(dToken, Token.Gradient);
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.CopyWindow(dy, 0, 1, Positions(dx), 0, 0, 1, OutputShape[2] - 1);
        return dx;
    }
}

/// <summary>
/// Adds a learned tensor of the input's own shape to every item (ViT's <c>pos_embedding</c> on its [C, 1, T] tokens).
/// Its shape fixes the input size: a network with one does not resize.
/// </summary>
public sealed class PositionEmbedding : Layer
{
    /// <summary>The embedding, of the input's shape; starts normal with σ = 0.02 as torchvision's does.</summary>
    public Parameter Embedding { get; private set; } = null!;

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        Embedding = AddParameter("embedding", input, decays: false, (values, rng) =>
        {
            for (int i = 0; i < values.Length; i++) values[i] = (float)(0.02 * rng.NextGaussian());
        });
        return input;
    }

    private Tensor Ones(int batch)
    {
        var ones = Buffer("ones", new TensorShape(batch, 1));
        Backend.Fill(ones, 1);
        return ones;
    }

    private Tensor Rows(Tensor t) => t.Reshape(new TensorShape(t.Shape.N, InputShape.Length));

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        var y = OutputBuffer(x.Shape.N);
        Backend.Copy(x, y);
        // y[n] += embedding for every item n: the product of a column of ones and the embedding as a row.
        Backend.MatMul(Ones(x.Shape.N), false, Embedding.Value.Reshape(new TensorShape(1, InputShape.Length)), false, Rows(y), beta: 1f);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        Backend.MatMul(Ones(dy.Shape.N), true, Rows(dy), false, Embedding.Gradient.Reshape(new TensorShape(1, InputShape.Length)));
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.Copy(dy, dx);
        return dx;
    }
}

/// <summary>
/// The features [C] of one position of a [C, H, W] input, counted in row-major order: ViT's classifier reads the class
/// token at position 0.
/// </summary>
public sealed class TokenAt : Layer
{
    /// <summary>Reads position <paramref name="index"/>.</summary>
    public TokenAt(int index = 0)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "A position index must not be negative.");
        Index = index;
    }

    /// <summary>The position read.</summary>
    public int Index { get; }

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        RequireRank(input, 3, "[C, H, W] images or [C, 1, T] token sequences");
        if (Index >= input[1] * input[2]) throw Error($"reads position {Index} of an input with {input[1] * input[2]} positions.");
        return new TensorShape(input[0]);
    }

    private Tensor Positions(Tensor t) => t.Reshape(new TensorShape(t.Shape.N, InputShape[0], 1, InputShape[1] * InputShape[2]));

    private Tensor Single(Tensor t) => t.Reshape(new TensorShape(t.Shape.N, InputShape[0], 1, 1));

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        var y = OutputBuffer(x.Shape.N);
        Backend.CopyWindow(Positions(x), 0, Index, Single(y), 0, 0, 1, 1);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.Fill(dx, 0);
        Backend.CopyWindow(Single(dy), 0, 0, Positions(dx), 0, Index, 1, 1);
        return dx;
    }
}
