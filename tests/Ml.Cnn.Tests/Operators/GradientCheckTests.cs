using Ml.Cnn.Backends;
using Ml.Cnn.Core;
using Ml.Cnn.Layers;
using Ml.Cnn.Losses;
using Ml.Cnn.Tests.Support;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Operators;

/// <summary>Finite-difference checks of every layer's and loss's backward pass, on odd shapes.</summary>
public abstract class GradientCheckTests(string backendName)
{
    private readonly IBackend _backend = TestBackends.Create(backendName);

    [Theory]
    [InlineData(2, 3, 7, 5, 4, 3, 1, 0, 1, 1)]   // odd sizes, no padding
    [InlineData(2, 3, 7, 5, 4, 3, 2, 1, 1, 1)]   // stride 2, padding 1
    [InlineData(1, 4, 9, 8, 6, 4, 3, 2, 1, 1)]   // even kernel, stride 3, padding 2
    [InlineData(2, 4, 6, 7, 6, 3, 1, 2, 2, 2)]   // dilation 2, two groups
    [InlineData(2, 6, 5, 5, 3, 1, 1, 0, 1, 3)]   // 1×1, three groups
    [InlineData(1, 4, 5, 6, 4, 3, 1, 1, 1, 4)]   // depthwise
    public void Convolution(int n, int c, int h, int w, int outC, int k, int stride, int pad, int dilation, int groups) =>
        GradientCheck.Layer(_backend, new Conv2d(outC, k, stride, pad, dilation, groups), [n, c, h, w]);

    [Theory]
    [InlineData(2, 7, 7, 2, 2, 0, false)]
    [InlineData(2, 7, 6, 3, 2, 1, true)]
    [InlineData(1, 9, 8, 3, 2, 0, true)]
    [InlineData(2, 5, 5, 3, 1, 1, false)]
    public void MaxPooling(int n, int h, int w, int k, int stride, int pad, bool ceil) =>
        GradientCheck.Layer(_backend, new MaxPool2d(k, stride, pad, ceil), [n, 3, h, w], spaced: true);

    [Theory]
    [InlineData(2, 7, 7, 2, 2, 0, false, true)]
    [InlineData(2, 7, 6, 3, 2, 1, true, true)]
    [InlineData(2, 7, 6, 3, 2, 1, true, false)]
    [InlineData(1, 9, 8, 3, 3, 1, false, false)]
    public void AveragePooling(int n, int h, int w, int k, int stride, int pad, bool ceil, bool countPad) =>
        GradientCheck.Layer(_backend, new AvgPool2d(k, stride, pad, ceil, countPad), [n, 3, h, w]);

    [Fact]
    public void GlobalAveragePooling() => GradientCheck.Layer(_backend, new GlobalAvgPool(), [2, 3, 5, 3]);

    [Fact]
    public void DenseOnVectors() => GradientCheck.Layer(_backend, new Dense(5), [3, 7]);

    [Fact]
    public void DenseOnImages() => GradientCheck.Layer(_backend, new Dense(4), [2, 3, 3, 2]);

    [Fact]
    public void Relu() => GradientCheck.Layer(_backend, new Relu(), [2, 3, 4, 5], spaced: true);

    [Fact]
    public void LeakyRelu() => GradientCheck.Layer(_backend, new LeakyRelu(0.1f), [2, 3, 4, 5], spaced: true);

    [Fact]
    public void Elu() => GradientCheck.Layer(_backend, new Elu(0.7f), [2, 3, 4, 5], spaced: true);

    [Fact]
    public void Sigmoid() => GradientCheck.Layer(_backend, new Sigmoid(), [2, 3, 4, 5]);

    [Fact]
    public void Tanh() => GradientCheck.Layer(_backend, new Tanh(), [2, 3, 4, 5]);

    [Fact]
    public void ClipAsRelu6() => GradientCheck.Layer(_backend, new Clip(), [2, 3, 5, 5], spaced: true);

    [Fact]
    public void ClipBetweenBounds() => GradientCheck.Layer(_backend, new Clip(-0.5f, 1f), [2, 3, 5, 5], spaced: true);

    [Theory]
    [InlineData(1f / 6, 0.5f)] // PyTorch's
    [InlineData(0.2f, 0.5f)]   // ONNX's default
    public void HardSigmoid(float alpha, float beta) => GradientCheck.Layer(_backend, new HardSigmoid(alpha, beta), [2, 3, 5, 5], spaced: true);

    [Fact]
    public void HardSwish() => GradientCheck.Layer(_backend, new HardSwish(), [2, 3, 5, 5], spaced: true); // spans the kinks at ±3

    [Fact]
    public void Silu() => GradientCheck.Layer(_backend, new Silu(), [2, 3, 4, 5]);

    [Fact]
    public void Gelu() => GradientCheck.Layer(_backend, new Gelu(), [2, 3, 4, 5]);

    [Theory]
    [InlineData(new[] { 3, 4, 5 }, new[] { 3, 1, 1 }, 1)] // input × per-channel gate (squeeze-and-excitation)
    [InlineData(new[] { 3 }, new[] { 3, 4, 5 }, 0)]      // a [C] gate first
    [InlineData(new[] { 3, 4, 5 }, new[] { 3, 4, 5 }, 1)] // equal shapes
    public void Multiply(int[] first, int[] second, int gate)
    {
        var multiply = new Multiply();
        CheckMerge(multiply, first, second);
        Assert.Equal(gate, multiply.GateIndex);
    }

    [Theory]
    [InlineData(new[] { 3, 7, 8 }, new[] { 5, 4, 5 })]  // odd differences: one more row and column cut at the bottom and right
    [InlineData(new[] { 2, 6, 6 }, new[] { 2, 6, 6 })]  // nothing to cut
    public void Cropping(int[] input, int[] reference)
    {
        var crop = new Crop();
        var gradients = CheckMerge(crop, input, reference);
        Assert.Equal(((input[1] - reference[1]) / 2, (input[2] - reference[2]) / 2), crop.Offset);
        Assert.All(gradients[1], g => Assert.Equal(0, g));
    }

    /// <summary>Central differences of Σ r ⊙ merge(a, b) against the merge's backward pass, for both inputs.</summary>
    private float[][] CheckMerge(MergeLayer merge, int[] first, int[] second)
    {
        var rng = new Rng(11);
        var inputs = new[] { first, second }.Select(s => TensorOf(_backend, RandomNormal(rng, 2 * s.Aggregate(1, (p, d) => p * d)), [2, .. s])).ToArray();
        merge.Build(_backend, inputs.Select(t => t.Shape.DropBatch()).ToArray());
        var projection = RandomNormal(rng, merge.OutputShape.Length * 2);
        double Objective() => merge.Forward(inputs).ToArray().Select((v, i) => (double)v * projection[i]).Sum();
        Objective();
        var gradients = merge.Backward(TensorOf(_backend, projection, [2, .. merge.OutputShape.Dims])).Select(g => g.ToArray()).ToArray();
        for (int k = 0; k < 2; k++)
        {
            var values = inputs[k].ToArray();
            for (int i = 0; i < values.Length; i++)
            {
                float original = values[i];
                values[i] = original + 1e-2f; inputs[k].CopyFrom(values);
                double plus = Objective();
                values[i] = original - 1e-2f; inputs[k].CopyFrom(values);
                double minus = Objective();
                values[i] = original; inputs[k].CopyFrom(values);
                Assert.Equal((plus - minus) / 2e-2, gradients[k][i], 2);
            }
        }
        return gradients;
    }

    [Fact]
    public void ChannelSlice() => GradientCheck.Layer(_backend, new ChannelSlice(2, 3), [2, 6, 3, 4]);

    [Fact]
    public void ChannelShuffle() => GradientCheck.Layer(_backend, new ChannelShuffle(3), [2, 6, 3, 4]);

    [Fact]
    public void ChannelShuffleIsPyTorchsViewTransposeView()
    {
        // 6 channels in 2 groups: [0 1 2 | 3 4 5] read by columns → 0 3 1 4 2 5.
        var shuffle = new ChannelShuffle(2);
        shuffle.Build(_backend, new Ml.Cnn.Tensors.TensorShape(6, 1, 1), null);
        var y = shuffle.Forward(TensorOf(_backend, [0, 1, 2, 3, 4, 5], 1, 6, 1, 1), training: false);
        Assert.Equal([0f, 3, 1, 4, 2, 5], y.ToArray());
    }

    [Fact]
    public void GlobalAveragePoolingKeepingItsPlane() => GradientCheck.Layer(_backend, new GlobalAvgPool(keepSpatialDims: true), [2, 3, 5, 3]);

    [Fact]
    public void DropoutInTraining()
    {
        var dropout = new Dropout(0.3f);
        ulong[]? state = null;
        // The same mask for every evaluation: rewind the layer's generator before each forward pass.
        GradientCheck.Layer(_backend, dropout, [2, 3, 4, 5], beforeForward: () =>
        {
            if (state is null) state = dropout.Random.GetState();
            else dropout.Random.SetState(state);
        });
    }

    [Theory]
    [InlineData(new[] { 3, 4, 3, 5 })]
    [InlineData(new[] { 5, 6 })]
    public void BatchNormTraining(int[] shape) => GradientCheck.Layer(_backend, new BatchNorm(), shape);

    [Theory]
    [InlineData(new[] { 3, 4, 3, 5 })] // each pixel over its channels
    [InlineData(new[] { 5, 6 })]       // each row over its features
    public void LayerNorm(int[] shape) => GradientCheck.Layer(_backend, new LayerNorm(), shape);

    [Theory]
    [InlineData(1, new[] { 2, 12, 1, 5 })] // a token sequence, one head
    [InlineData(2, new[] { 2, 12, 2, 3 })] // an image's pixels, two heads
    public void SelfAttention(int heads, int[] shape) => GradientCheck.Layer(_backend, new SelfAttention(heads), shape);

    [Fact]
    public void ClassToken() => GradientCheck.Layer(_backend, new ClassToken(), [2, 3, 2, 3]);

    [Fact]
    public void PositionEmbedding() => GradientCheck.Layer(_backend, new PositionEmbedding(), [3, 4, 1, 5]);

    [Fact]
    public void TokenAt() => GradientCheck.Layer(_backend, new TokenAt(4), [2, 3, 2, 3]);

    [Fact]
    public void BatchNormEvaluation() => GradientCheck.Layer(_backend, new BatchNorm(), [3, 4, 3, 5], training: false);

    [Theory]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void LocalResponseNorm(int size) =>
        GradientCheck.Layer(_backend, new LocalResponseNorm(size, alpha: 0.5f, beta: 0.75f, k: 2f), [2, 7, 3, 3]);

    [Fact]
    public void Softmax() => GradientCheck.Layer(_backend, new Softmax(), [3, 6]);

    [Fact]
    public void Flatten() => GradientCheck.Layer(_backend, new Flatten(), [2, 3, 2, 2]);

    [Fact]
    public void ConcatAndAdd()
    {
        // Through a tiny DAG: out = concat(a, b) + concat(b, a), so each input receives two gradient paths.
        var rng = new Rng(3);
        var a = TensorOf(_backend, RandomNormal(rng, 2 * 2 * 9), 2, 2, 3, 3);
        var b = TensorOf(_backend, RandomNormal(rng, 2 * 2 * 9), 2, 2, 3, 3);
        var concatAb = new Concat();
        var concatBa = new Concat();
        var add = new Add();
        var item = a.Shape.DropBatch();
        concatAb.Build(_backend, [item, item]);
        concatBa.Build(_backend, [item, item]);
        add.Build(_backend, [concatAb.OutputShape, concatBa.OutputShape]);
        var projection = RandomNormal(rng, 2 * 4 * 9);
        double Objective()
        {
            var y = add.Forward([concatAb.Forward([a, b]), concatBa.Forward([b, a])]).ToArray();
            return y.Select((v, i) => (double)v * projection[i]).Sum();
        }
        Objective();
        var dy = TensorOf(_backend, projection, 2, 4, 3, 3);
        var branchGradients = add.Backward(dy);
        var fromAb = concatAb.Backward(branchGradients[0]).Select(t => t.ToArray()).ToArray();
        var fromBa = concatBa.Backward(branchGradients[1]).Select(t => t.ToArray()).ToArray();
        var da = fromAb[0].Zip(fromBa[1], (p, q) => p + q).ToArray();
        var values = a.ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            float original = values[i];
            values[i] = original + 1e-2f; a.CopyFrom(values);
            double plus = Objective();
            values[i] = original - 1e-2f; a.CopyFrom(values);
            double minus = Objective();
            values[i] = original; a.CopyFrom(values);
            Assert.Equal((plus - minus) / 2e-2, da[i], 2);
        }
    }

    [Fact]
    public void SoftmaxCrossEntropy()
    {
        var rng = new Rng(5);
        GradientCheck.Loss(_backend, new SoftmaxCrossEntropyLoss(), TensorOf(_backend, RandomNormal(rng, 4 * 7, 3), 4, 7), TensorOf(_backend, [0, 6, 3, 3], 4));
    }

    [Fact]
    public void MulticlassHinge()
    {
        var rng = new Rng(6);
        GradientCheck.Loss(_backend, new MulticlassHingeLoss(), TensorOf(_backend, Spaced(rng, 4 * 7, 0.13f), 4, 7), TensorOf(_backend, [1, 0, 6, 2], 4));
    }

    [Fact]
    public void MeanSquaredError()
    {
        var rng = new Rng(7);
        GradientCheck.Loss(_backend, new MeanSquaredErrorLoss(), TensorOf(_backend, RandomNormal(rng, 15), 5, 3), TensorOf(_backend, RandomNormal(rng, 15), 5, 3));
    }

    [Fact]
    public void L1()
    {
        var rng = new Rng(8);
        GradientCheck.Loss(_backend, new L1Loss(), TensorOf(_backend, Spaced(rng, 15, 0.1f), 5, 3), TensorOf(_backend, new float[15], 5, 3));
    }

    [Fact]
    public void BinaryCrossEntropyWithLogits()
    {
        var rng = new Rng(9);
        var targets = Enumerable.Range(0, 15).Select(i => (float)(i % 3) / 2).ToArray();
        GradientCheck.Loss(_backend, new BinaryCrossEntropyWithLogitsLoss(), TensorOf(_backend, RandomNormal(rng, 15, 2), 5, 3), TensorOf(_backend, targets, 5, 3));
    }

    [Theory]
    [InlineData(2, 3, 4, 5, 4, 3, 1, 0, 0, 1, 1)]   // stride 1: a full convolution
    [InlineData(2, 4, 3, 4, 5, 4, 2, 1, 0, 1, 1)]   // the decoders' 2× upsampling
    [InlineData(1, 3, 3, 4, 2, 3, 2, 1, 1, 1, 1)]   // output padding
    [InlineData(1, 4, 3, 3, 6, 3, 3, 0, 2, 2, 2)]   // stride 3, dilation 2, groups
    public void TransposedConvolution(int n, int c, int h, int w, int outC, int k, int stride, int pad, int outPad,
        int dilation, int groups) =>
        GradientCheck.Layer(_backend, new ConvTranspose2d(outC, k, stride, pad, outPad, dilation, groups), [n, c, h, w]);

    [Theory]
    [InlineData(UpsampleMode.Nearest, 2)]
    [InlineData(UpsampleMode.Nearest, 3)]
    [InlineData(UpsampleMode.Bilinear, 2)]
    [InlineData(UpsampleMode.Bilinear, 3)]
    public void Upsampling(UpsampleMode mode, int scale) =>
        GradientCheck.Layer(_backend, new Upsample(scale, mode), [2, 3, 3, 4]);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PixelCrossEntropy(bool weighted)
    {
        var rng = new Rng(10);
        float[] labels = [0, 2, -100, 1, 1, 0, 2, 2, -100, 0, 1, 2];
        var loss = new PixelCrossEntropyLoss(classWeights: weighted ? [0.5f, 2f, 1.25f] : null);
        GradientCheck.Loss(_backend, loss, TensorOf(_backend, RandomNormal(rng, 2 * 3 * 6, 2), 2, 3, 2, 3), TensorOf(_backend, labels, 2, 6));
    }

    [Fact]
    public void CenterNetDetectionLoss()
    {
        var rng = new Rng(11);
        // Two classes on a 3×4 map: objects as CenterNet.Encode writes them, in two images.
        float[] target = [.. Data.CenterNet.Encode([new(0, 1, 1, 7, 5), new(1, 8, 4, 14, 12)], 2, 3, 4, 4),
                          .. Data.CenterNet.Encode([new(1, 2, 2, 6, 10)], 2, 3, 4, 4)];
        var output = TensorOf(_backend, Spaced(rng, 2 * 6 * 12, 0.07f), 2, 6, 3, 4);
        GradientCheck.Loss(_backend, new CenterNetLoss(2), output, TensorOf(_backend, target, 2, 10 * 12));
        GradientCheck.Loss(_backend, new CenterNetLoss(2, gamma: 0.5f), output, TensorOf(_backend, target, 2, 10 * 12));
    }

    [Fact]
    public void TheFocalLossOfASaturatedLogitHasAFiniteGradientForEveryExponent()
    {
        // γ < 1 puts (1 − pt)^(γ − 1) = ∞ at pt = 1; the gradient's limit there is 0.
        foreach (float gamma in new[] { 0f, 0.5f, 2f })
        {
            var logits = TensorOf(_backend, [60, -60, 60, -60], 1, 4);
            var gradient = _backend.Allocate(logits.Shape);
            float loss = LossValue(_backend, (l, s) => _backend.SigmoidFocalLoss(logits, TensorOf(_backend, [1, 0, 0, 1], 1, 4), 0.25f, gamma, 1,
                gradient, l, s));
            Assert.True(float.IsFinite(loss), $"γ = {gamma}: loss {loss}");
            Assert.All(gradient.ToArray(), g => Assert.True(float.IsFinite(g), $"γ = {gamma}: gradient {g}"));
            Assert.All(gradient.ToArray()[..2], g => Assert.InRange(g, -1e-20f, 1e-20f)); // right answers: no gradient
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => new CenterNetLoss(2, gamma: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CenterNetLoss(2, alpha: 1.5f));
    }
}

public sealed class GradientCheck_Reference() : GradientCheckTests("reference");
public sealed class GradientCheck_Cpu() : GradientCheckTests("cpu2");
[Collection(TestBackends.GpuCollection)]
public sealed class GradientCheck_GpuOnCpuAccelerator() : GradientCheckTests("gpu-on-cpu");
