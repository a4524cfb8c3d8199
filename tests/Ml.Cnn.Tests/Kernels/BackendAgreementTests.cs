using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Backends.Reference;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;
using Xunit;
using Ml.Cnn.Tests.Support;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Kernels;

/// <summary>
/// The conformance suite: a backend against the reference backend on randomized shapes, deliberately off the SIMD
/// width (8) and the GEMM blocking (6×16 and 12×32 tiles, 144-row and 1024-deep blocks, 3072-wide panels), the small
/// shapes that skip packing (few columns of A·Bᵀ, shallow products), and the GPU backend's tiles and batch chunks.
/// Instantiated below for the CPU backend at several thread counts and for the GPU backend on ILGPU's CPU accelerator.
/// </summary>
public abstract class BackendAgreementTests(IBackend tested, ulong seed)
{
    private readonly ReferenceBackend _reference = new();
    private readonly IBackend _cpu = tested;
    private readonly Rng _rng = new(seed);

    private (Tensor Reference, Tensor Cpu) Random(params int[] shape)
    {
        var values = RandomNormal(_rng, new TensorShape(shape).Length);
        return (TensorOf(_reference, values, shape), TensorOf(_cpu, values, shape));
    }

    private Tensor Absolute((Tensor Reference, Tensor Cpu) pair) =>
        TensorOf(_reference, pair.Reference.ToArray().Select(Math.Abs).ToArray(), [.. pair.Reference.Shape.Dims]);

    private (Tensor Reference, Tensor Cpu) Empty(params int[] shape) =>
        (_reference.Allocate(new TensorShape(shape)), _cpu.Allocate(new TensorShape(shape)));

    [Theory]
    [InlineData(1, 1, 1, false, false)]
    [InlineData(7, 13, 5, false, false)]
    [InlineData(6, 16, 8, false, false)]
    [InlineData(145, 33, 257, false, false)]
    [InlineData(145, 33, 257, true, false)]
    [InlineData(31, 47, 300, false, true)]
    [InlineData(150, 17, 513, true, true)]
    [InlineData(9, 3100, 19, false, false)]
    [InlineData(300, 70, 11, true, true)]
    [InlineData(64, 10, 1024, false, true)]
    [InlineData(5, 3, 37, false, true)]
    [InlineData(33, 9, 5000, false, true)]
    [InlineData(64, 1030, 10, false, false)]
    [InlineData(10, 1030, 7, true, false)]
    [InlineData(10, 1024, 64, true, false)]
    public void MatMul(int m, int n, int k, bool transA, bool transB)
    {
        var a = transA ? Random(k, m) : Random(m, k);
        var b = transB ? Random(n, k) : Random(k, n);
        var c = Random(m, n);
        _reference.MatMul(a.Reference, transA, b.Reference, transB, c.Reference, 0.75f, 0.5f);
        _cpu.MatMul(a.Cpu, transA, b.Cpu, transB, c.Cpu, 0.75f, 0.5f);
        AssertClose(c.Reference, c.Cpu, $"gemm {m}x{n}x{k}", rel: 1e-4, abs: 1e-4);
    }

    [Theory]
    [InlineData(10, 20, 9, false)]   // shallow: no packing
    [InlineData(10, 20, 300, false)] // packed
    [InlineData(10, 7, 300, true)]   // few columns of A·Bᵀ: row dot products
    public void MatMulWithZeroBetaIgnoresGarbageInC(int m, int n, int k, bool transB)
    {
        var a = Random(m, k);
        var b = transB ? Random(n, k) : Random(k, n);
        var c = Empty(m, n);
        _cpu.Fill(c.Cpu, float.NaN);
        _reference.MatMul(a.Reference, false, b.Reference, transB, c.Reference);
        _cpu.MatMul(a.Cpu, false, b.Cpu, transB, c.Cpu);
        AssertClose(c.Reference, c.Cpu, "gemm beta 0");
    }

    public static TheoryData<int, int, int, int, int, int, int, int, int, int> ConvShapes() => new()
    {
        { 3, 3, 13, 11, 8, 3, 1, 1, 1, 1 },
        { 2, 5, 17, 9, 7, 5, 2, 2, 1, 1 },
        { 2, 4, 12, 12, 6, 3, 2, 1, 2, 2 },
        { 1, 3, 19, 19, 5, 11, 4, 2, 1, 1 },
        { 4, 8, 7, 7, 16, 1, 1, 0, 1, 4 },
        { 2, 6, 10, 10, 6, 3, 1, 1, 1, 6 },
        { 5, 2, 9, 10, 3, 4, 3, 0, 1, 1 },
        { 1, 32, 14, 14, 64, 5, 1, 2, 1, 1 },
        // Shapes for the direct AVX-512 kernels (stride 1, ≥ 16 output channels per group): partial channel blocks,
        // several and partial 7-pixel forward and 16-pixel weight-gradient row blocks, groups, 7-wide kernels (two tap
        // groups), 2-, 3- and 4-wide kernels (3- and 5-tap blocks), no padding, padding wider than the kernel's reach
        // (whole kernel rows skipped), maps narrower than a block, 1×1.
        { 2, 16, 6, 6, 16, 3, 1, 1, 1, 1 },
        { 2, 8, 9, 9, 16, 2, 1, 1, 1, 1 },
        { 2, 16, 12, 12, 16, 3, 1, 2, 1, 1 },
        { 1, 16, 7, 7, 32, 4, 1, 2, 1, 1 },
        { 3, 5, 11, 19, 20, 3, 1, 1, 1, 1 },
        { 2, 32, 9, 9, 32, 5, 1, 2, 1, 2 },
        { 2, 16, 8, 40, 16, 7, 1, 3, 1, 1 },
        { 2, 16, 10, 12, 24, 3, 1, 0, 1, 1 },
        { 3, 17, 9, 8, 16, 1, 1, 0, 1, 1 },
        // 1×1 on small planes with ≥ 32 output channels go to the batch-wide GEMM (a vision transformer's 17 tokens; an 8×8 map).
        { 3, 48, 1, 17, 144, 1, 1, 0, 1, 1 },
        { 2, 40, 8, 8, 64, 1, 1, 0, 1, 1 },
        { 9, 16, 6, 20, 32, 3, 1, 1, 1, 1 },
        { 2, 3, 9, 20, 16, 3, 1, 4, 1, 1 },   // pixel-lane forward (short reduction) with whole kernel rows on padding
        // Winograd (5×5 and 3×3, ≥ 16 channels in and out per group, ≥ 7 wide; backward-data swaps them), F(2×2, 5×5):
        // input channels short of a vector, a partial output-channel block, 7-tile chunks across tile rows with a short
        // last one, an odd output height (half a tile row), no padding, padding wider than the kernel's reach.
        { 2, 20, 11, 33, 20, 5, 1, 1, 1, 1 },
        { 3, 16, 12, 12, 32, 5, 1, 0, 1, 1 },
        { 1, 16, 5, 5, 16, 5, 1, 4, 1, 1 },
        // F(4×4, 3×3) and its F(3×3, 4×4) weight gradient, here and in the 3×3 shapes above that are ≥ 7 wide: a full
        // and a one-tile chunk with a short last tile row; a 7×7 map whose one chunk spans both tile rows.
        { 2, 16, 6, 30, 20, 3, 1, 1, 1, 1 },
        { 3, 16, 7, 7, 16, 3, 1, 1, 1, 1 },
        // Depthwise (one input channel per group): MobileNet's 3×3 at strides 1 and 2, a channel multiplier of 2, a
        // 5×5 with dilation, padding wider than the kernel's reach and none, rows shorter than a vector.
        { 2, 24, 13, 17, 24, 3, 1, 1, 1, 24 },
        { 2, 24, 13, 17, 24, 3, 2, 1, 1, 24 },
        { 1, 8, 9, 40, 16, 3, 1, 1, 1, 8 },
        { 2, 6, 11, 12, 6, 5, 1, 4, 2, 6 },
        { 1, 5, 6, 7, 5, 3, 2, 0, 1, 5 },
        { 1, 4, 3, 3, 4, 5, 1, 3, 1, 4 },
        { 1, 4, 5, 6, 4, 3, 1, 3, 1, 4 },     // padding beyond d(k − 1)
        { 1, 4, 9, 10, 4, 3, 1, 3, 1, 4 },    // the same on a plane large enough to run plane by plane, but for its data gradient
        // Small planes (≤ 64 pixels) run channels-last: 40 channels on 4×4 over 5 images (image groups of 4 and 1 in the
        // weight gradient's fixed-order sum), and stride 2 on 8×8.
        { 5, 40, 4, 4, 40, 3, 1, 1, 1, 40 },
        { 5, 24, 8, 8, 24, 3, 2, 1, 1, 24 },
        // Strided and dilated convolutions with many channels, whose data gradient is no stride-1 forward pass:
        // ResNet's 3×3 and 1×1 stride-2 downsampling, a dilated 3×3, and U-Net's 2×2 stride 2 seen from its transpose.
        { 2, 16, 16, 16, 32, 3, 2, 1, 1, 1 },
        { 2, 16, 14, 14, 32, 1, 2, 0, 1, 1 },
        { 2, 16, 12, 12, 16, 3, 1, 2, 2, 1 },
        { 2, 16, 16, 16, 64, 2, 2, 0, 1, 1 },
    };

    [Fact]
    public void PointwiseConvolutionsOnSmallPlanesGoToTheGemmAndLargeOnesToTheDirectKernel()
    {
        var tokens = new ConvGeometry(32, 768, 1, 17, 2304, 1, 1, 1, 1, 0, 0);
        Assert.True(DirectConvolution.PointwiseByGemm(tokens) && !DirectConvolution.Fits(tokens), "a ViT projection");
        var thin = new ConvGeometry(32, 96, 32, 32, 16, 1, 1, 1, 1, 0, 0); // MobileNetV2's 96 → 16 on 32×32
        Assert.True(!DirectConvolution.PointwiseByGemm(thin) && DirectConvolution.Fits(thin), "a thin pointwise layer on a large map");
    }

    [Theory, MemberData(nameof(ConvShapes))]
    public void Convolution(int n, int c, int h, int w, int outC, int k, int stride, int pad, int dilation, int groups)
    {
        var g = new ConvGeometry(n, c, h, w, outC, k, k, stride, stride, pad, pad, dilation, dilation, groups);
        var x = Random(n, c, h, w);
        var weights = Random(outC, c / groups, k, k);
        var bias = Random(outC);
        var y = Empty(n, outC, g.OutH, g.OutW);
        _reference.ConvForward(g, x.Reference, weights.Reference, bias.Reference, y.Reference);
        _cpu.ConvForward(g, x.Cpu, weights.Cpu, bias.Cpu, y.Cpu);
        // Bounds for the sums: the same products of |x|, |dy| and |w|.
        var absWeights = Absolute(weights);
        var yBound = _reference.Allocate(y.Reference.Shape);
        _reference.ConvForward(g, Absolute(x), absWeights, Absolute(bias), yBound);
        AssertWithinBound(y.Reference, y.Cpu, yBound, "conv forward", rel: 1e-5);

        var dy = Random(n, outC, g.OutH, g.OutW);
        var dx = Empty(n, c, h, w);
        _reference.ConvBackwardData(g, dy.Reference, weights.Reference, dx.Reference);
        _cpu.ConvBackwardData(g, dy.Cpu, weights.Cpu, dx.Cpu);
        var dxBound = _reference.Allocate(dx.Reference.Shape);
        _reference.ConvBackwardData(g, Absolute(dy), absWeights, dxBound);
        AssertWithinBound(dx.Reference, dx.Cpu, dxBound, "conv backward data", rel: 1e-5);

        var dw = Empty(outC, c / groups, k, k);
        var db = Empty(outC);
        _reference.ConvBackwardWeights(g, x.Reference, dy.Reference, dw.Reference, db.Reference);
        _cpu.ConvBackwardWeights(g, x.Cpu, dy.Cpu, dw.Cpu, db.Cpu);
        var dwBound = _reference.Allocate(dw.Reference.Shape);
        _reference.ConvBackwardWeights(g, Absolute(x), Absolute(dy), dwBound, null);
        AssertWithinBound(dw.Reference, dw.Cpu, dwBound, "conv backward weights", rel: 1e-5);
        AssertClose(db.Reference, db.Cpu, "conv backward bias", abs: 1e-4);
    }

    [Theory]
    [InlineData(3, 13, 11, 3, 2, 1, true, true)]
    [InlineData(2, 8, 8, 2, 2, 0, false, true)]
    [InlineData(2, 9, 7, 3, 2, 1, true, false)]
    [InlineData(1, 10, 10, 4, 3, 2, false, false)]
    [InlineData(2, 16, 16, 3, 2, 1, false, true)] // ResNet's stem pooling
    public void Pooling(int n, int h, int w, int k, int stride, int pad, bool ceil, bool countPad)
    {
        var g = new PoolGeometry(n, 5, h, w, k, k, stride, stride, pad, pad, ceil, countPad);
        var x = Random(n, 5, h, w);
        var y = Empty(n, 5, g.OutH, g.OutW);
        var dy = Random(n, 5, g.OutH, g.OutW);
        var dx = Empty(n, 5, h, w);
        _reference.MaxPoolForward(g, x.Reference, y.Reference);
        _cpu.MaxPoolForward(g, x.Cpu, y.Cpu);
        AssertClose(y.Reference, y.Cpu, "max pool");
        _reference.MaxPoolBackward(g, x.Reference, dy.Reference, dx.Reference);
        _cpu.MaxPoolBackward(g, x.Cpu, dy.Cpu, dx.Cpu);
        AssertClose(dx.Reference, dx.Cpu, "max pool backward");
        _reference.AvgPoolForward(g, x.Reference, y.Reference);
        _cpu.AvgPoolForward(g, x.Cpu, y.Cpu);
        AssertClose(y.Reference, y.Cpu, "avg pool");
        _reference.AvgPoolBackward(g, dy.Reference, dx.Reference);
        _cpu.AvgPoolBackward(g, dy.Cpu, dx.Cpu);
        AssertClose(dx.Reference, dx.Cpu, "avg pool backward");
    }

    [Theory]
    [InlineData(ActivationKind.Relu, 0f, 0f)]
    [InlineData(ActivationKind.LeakyRelu, 0.2f, 0f)]
    [InlineData(ActivationKind.Elu, 1.3f, 0f)]
    [InlineData(ActivationKind.Sigmoid, 0f, 0f)]
    [InlineData(ActivationKind.Tanh, 0f, 0f)]
    [InlineData(ActivationKind.Clip, -0.3f, 0.4f)]
    [InlineData(ActivationKind.HardSigmoid, 2f, 0.5f)]
    [InlineData(ActivationKind.HardSwish, 0f, 0f)]
    [InlineData(ActivationKind.Silu, 0f, 0f)]
    [InlineData(ActivationKind.Gelu, 0f, 0f)]
    public void Activations(ActivationKind kind, float alpha, float beta)
    {
        var x = Random(3, 37, 41);
        var y = Empty(3, 37, 41);
        var dy = Random(3, 37, 41);
        var dx = Empty(3, 37, 41);
        _reference.ActivationForward(kind, alpha, beta, x.Reference, y.Reference);
        _cpu.ActivationForward(kind, alpha, beta, x.Cpu, y.Cpu);
        AssertClose(y.Reference, y.Cpu, $"{kind} forward");
        _reference.ActivationBackward(kind, alpha, beta, x.Reference, y.Reference, dy.Reference, dx.Reference);
        _cpu.ActivationBackward(kind, alpha, beta, x.Cpu, y.Cpu, dy.Cpu, dx.Cpu);
        AssertClose(dx.Reference, dx.Cpu, $"{kind} backward");
    }

    [Theory]
    [InlineData(37 * 41)] // a gate per channel, broadcast over the plane (squeeze-and-excitation)
    [InlineData(1)]       // equal shapes
    public void MultiplicationsAgree(int plane)
    {
        var a = Random(3, 5, 37 * 41);
        var b = Random(3, 5, 37 * 41 / plane);
        var y = Empty(3, 5, 37 * 41);
        _reference.Multiply(a.Reference, b.Reference, y.Reference);
        _cpu.Multiply(a.Cpu, b.Cpu, y.Cpu);
        AssertClose(y.Reference, y.Cpu, "multiply");
        var dy = Random(3, 5, 37 * 41);
        var (da, db) = (Empty(3, 5, 37 * 41), Empty(3, 5, 37 * 41 / plane));
        _reference.MultiplyBackward(a.Reference, b.Reference, dy.Reference, da.Reference, db.Reference);
        _cpu.MultiplyBackward(a.Cpu, b.Cpu, dy.Cpu, da.Cpu, db.Cpu);
        AssertClose(da.Reference, da.Cpu, "multiply backward (a)");
        AssertClose(db.Reference, db.Cpu, "multiply backward (b)");
    }

    [Fact]
    public void DropoutMasksAgree()
    {
        var x = Random(5, 1001);
        var y = Empty(5, 1001);
        _reference.DropoutForward(x.Reference, y.Reference, 0.4f, 77);
        _cpu.DropoutForward(x.Cpu, y.Cpu, 0.4f, 77);
        Assert.Equal(y.Reference.ToArray(), y.Cpu.ToArray());
        float kept = y.Cpu.ToArray().Count(v => v != 0) / 5005f;
        Assert.InRange(kept, 0.55f, 0.65f);
    }

    [Theory]
    [InlineData(new[] { 5, 7, 9, 3 }, true)]
    [InlineData(new[] { 5, 7, 9, 3 }, false)]
    [InlineData(new[] { 33, 13 }, true)]
    public void BatchNorm(int[] shape, bool training)
    {
        int c = shape[1];
        var x = Random(shape);
        var y = Empty(shape);
        var (gamma, beta) = (Random(c), Random(c));
        var (mean, invStd, runMean, runVar) = (Empty(c), Empty(c), Empty(c), Empty(c));
        _reference.Fill(runVar.Reference, 1.5f);
        _cpu.Fill(runVar.Cpu, 1.5f);
        foreach (var (b, pick) in new (IBackend, Func<(Tensor, Tensor), Tensor>)[] { (_reference, t => t.Item1), (_cpu, t => t.Item2) })
        {
            if (training)
                b.BatchNormTrainForward(pick(x), pick(gamma), pick(beta), pick(y), pick(mean), pick(invStd), pick(runMean), pick(runVar), 0.1f, 1e-5f);
            else
                b.BatchNormEvalForward(pick(x), pick(gamma), pick(beta), pick(runMean), pick(runVar), 1e-5f, pick(y), pick(mean), pick(invStd));
        }
        AssertClose(y.Reference, y.Cpu, "batch norm forward");
        AssertClose(runVar.Reference, runVar.Cpu, "batch norm running variance");
        var dy = Random(shape);
        var dx = Empty(shape);
        var (dgamma, dbeta) = (Empty(c), Empty(c));
        _reference.BatchNormBackward(x.Reference, dy.Reference, gamma.Reference, mean.Reference, invStd.Reference, training, dx.Reference, dgamma.Reference, dbeta.Reference);
        _cpu.BatchNormBackward(x.Cpu, dy.Cpu, gamma.Cpu, mean.Cpu, invStd.Cpu, training, dx.Cpu, dgamma.Cpu, dbeta.Cpu);
        AssertClose(dx.Reference, dx.Cpu, "batch norm dx", abs: 1e-4);
        AssertClose(dgamma.Reference, dgamma.Cpu, "batch norm dgamma", abs: 1e-4);
        AssertClose(dbeta.Reference, dbeta.Cpu, "batch norm dbeta", abs: 1e-4);
    }

    [Theory]
    [InlineData(new[] { 5, 7, 9, 3 })] // each pixel over its channels
    [InlineData(new[] { 33, 13 })]     // each row over its features
    public void LayerNorm(int[] shape)
    {
        int c = shape[1], positions = shape[0] * (shape.Aggregate(1, (a, d) => a * d) / shape[0] / c);
        var x = Random(shape);
        var (y, dx, dy) = (Empty(shape), Empty(shape), Random(shape));
        var (gamma, beta, dgamma, dbeta) = (Random(c), Random(c), Empty(c), Empty(c));
        var (mean, invStd) = (Empty(positions), Empty(positions));
        _reference.LayerNormForward(x.Reference, gamma.Reference, beta.Reference, 1e-6f, y.Reference, mean.Reference, invStd.Reference);
        _cpu.LayerNormForward(x.Cpu, gamma.Cpu, beta.Cpu, 1e-6f, y.Cpu, mean.Cpu, invStd.Cpu);
        AssertClose(y.Reference, y.Cpu, "layer norm forward");
        _reference.LayerNormBackward(x.Reference, dy.Reference, gamma.Reference, mean.Reference, invStd.Reference, dx.Reference,
            dgamma.Reference, dbeta.Reference);
        _cpu.LayerNormBackward(x.Cpu, dy.Cpu, gamma.Cpu, mean.Cpu, invStd.Cpu, dx.Cpu, dgamma.Cpu, dbeta.Cpu);
        AssertClose(dx.Reference, dx.Cpu, "layer norm dx", abs: 1e-4);
        AssertClose(dgamma.Reference, dgamma.Cpu, "layer norm dgamma", abs: 1e-4);
        AssertClose(dbeta.Reference, dbeta.Cpu, "layer norm dbeta", abs: 1e-4);
    }

    [Theory]
    [InlineData(2, 3, 8, 1, 17)]  // a vision transformer's tokens: 17 of them, 3 heads of 8 channels
    [InlineData(3, 1, 5, 4, 9)]   // one head over an image's 36 pixels, 9-channel heads off the SIMD width
    [InlineData(1, 4, 16, 1, 70)] // rows of 70 scores: past a GEMM tile and the vector width
    public void SelfAttention(int items, int heads, int headSize, int height, int width)
    {
        int c = heads * headSize, t = height * width;
        var qkv = Random(items, 3 * c, height, width);
        var (y, p, dqkv, scratch) = (Empty(items, c, height, width), Empty(items, heads, t, t), Empty(items, 3 * c, height, width),
            Empty(items, heads, t, t));
        var dy = Random(items, c, height, width);
        float scale = 1 / MathF.Sqrt(headSize);
        _reference.AttentionForward(qkv.Reference, heads, scale, p.Reference, y.Reference);
        _cpu.AttentionForward(qkv.Cpu, heads, scale, p.Cpu, y.Cpu);
        AssertClose(p.Reference, p.Cpu, "attention probabilities", abs: 1e-5);
        AssertClose(y.Reference, y.Cpu, "attention forward", abs: 1e-4);
        _reference.AttentionBackward(qkv.Reference, p.Reference, dy.Reference, heads, scale, scratch.Reference, dqkv.Reference);
        _cpu.AttentionBackward(qkv.Cpu, p.Cpu, dy.Cpu, heads, scale, scratch.Cpu, dqkv.Cpu);
        AssertClose(dqkv.Reference, dqkv.Cpu, "attention dqkv", abs: 1e-4);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(4)]
    public void LocalResponseNorm(int size)
    {
        var x = Random(3, 11, 5, 7);
        var (y, scale, dx) = (Empty(3, 11, 5, 7), Empty(3, 11, 5, 7), Empty(3, 11, 5, 7));
        var dy = Random(3, 11, 5, 7);
        _reference.LrnForward(x.Reference, y.Reference, scale.Reference, size, 0.3f, 0.75f, 2f);
        _cpu.LrnForward(x.Cpu, y.Cpu, scale.Cpu, size, 0.3f, 0.75f, 2f);
        AssertClose(y.Reference, y.Cpu, "lrn forward");
        _reference.LrnBackward(x.Reference, y.Reference, scale.Reference, dy.Reference, dx.Reference, size, 0.3f, 0.75f);
        _cpu.LrnBackward(x.Cpu, y.Cpu, scale.Cpu, dy.Cpu, dx.Cpu, size, 0.3f, 0.75f);
        AssertClose(dx.Reference, dx.Cpu, "lrn backward");
    }

    private (Tensor Reference, Tensor Cpu) Of(float[] values, params int[] shape) =>
        (TensorOf(_reference, values, shape), TensorOf(_cpu, values, shape));

    private (Tensor Reference, Tensor Cpu) Labels(int count, int classes, int ignoreEvery = 0) =>
        Of(Enumerable.Range(0, count).Select(i => ignoreEvery > 0 && i % ignoreEvery == 0 ? -100f : _rng.NextInt(classes)).ToArray(), count);

    private void AssertLoss(string what, Action<IBackend, Tensor, Tensor, int> loss, (Tensor Reference, Tensor Cpu) gradient)
    {
        float expected = LossValue(_reference, (l, s) => loss(_reference, gradient.Reference, l, s));
        float actual = LossValue(_cpu, (l, s) => loss(_cpu, gradient.Cpu, l, s));
        Assert.True(Math.Abs(expected - actual) <= 1e-5 * Math.Abs(expected) + 1e-6, $"{what}: {actual}, the reference's {expected}");
        AssertClose(gradient.Reference, gradient.Cpu, what + " gradient");
    }

    [Fact]
    public void SoftmaxLossesAndChannelOperations()
    {
        // Rows and elements enough for several of a backend's tasks (the CPU's elementwise losses go 16,384 at a time).
        var logits = Random(37, 11);
        var labels = Labels(37, 11);
        AssertLoss("softmax cross-entropy", (b, d, l, s) => b.SoftmaxCrossEntropy(Pick(b, logits), Pick(b, labels), d, l, s), Empty(37, 11));
        AssertLoss("multiclass hinge", (b, d, l, s) => b.MulticlassHinge(Pick(b, logits), Pick(b, labels), d, l, s), Empty(37, 11));
        var (probabilities, dx) = (Empty(37, 11), Empty(37, 11));
        _reference.SoftmaxForward(logits.Reference, probabilities.Reference);
        _cpu.SoftmaxForward(logits.Cpu, probabilities.Cpu);
        AssertClose(probabilities.Reference, probabilities.Cpu, "softmax");
        var dy = Random(37, 11);
        _reference.SoftmaxBackward(probabilities.Reference, dy.Reference, dx.Reference);
        _cpu.SoftmaxBackward(probabilities.Cpu, dy.Cpu, dx.Cpu);
        AssertClose(dx.Reference, dx.Cpu, "softmax backward");

        var pixels = Random(3, 5, 17, 19);
        var masks = Labels(3 * 17 * 19, 5, ignoreEvery: 7);
        var classWeights = Of([0.5f, 1, 2, 0.25f, 3], 5);
        AssertLoss("per-pixel cross-entropy", (b, d, l, s) => b.PixelSoftmaxCrossEntropy(Pick(b, pixels), Pick(b, masks), null, -100, d, l, s), Empty(3, 5, 17, 19));
        AssertLoss("weighted per-pixel cross-entropy",
            (b, d, l, s) => b.PixelSoftmaxCrossEntropy(Pick(b, pixels), Pick(b, masks), Pick(b, classWeights), -100, d, l, s), Empty(3, 5, 17, 19));

        int length = 40_000;
        var predictions = Random(4, length / 4);
        var targets = Random(4, length / 4);
        var probabilitiesOf = Of(Enumerable.Range(0, length).Select(_ => (float)_rng.NextDouble()).ToArray(), 4, length / 4);
        var binary = Of(Enumerable.Range(0, length).Select(_ => _rng.NextInt(2) * 1f).ToArray(), 4, length / 4);
        var weights = Of(Enumerable.Range(0, length).Select(_ => (float)_rng.NextDouble()).ToArray(), 4, length / 4);
        AssertLoss("mean squared error", (b, d, l, s) => b.MeanSquaredError(Pick(b, predictions), Pick(b, targets), d, l, s), Empty(4, length / 4));
        AssertLoss("mean absolute error", (b, d, l, s) => b.MeanAbsoluteError(Pick(b, predictions), Pick(b, targets), d, l, s), Empty(4, length / 4));
        AssertLoss("binary cross-entropy", (b, d, l, s) => b.BinaryCrossEntropyWithLogits(Pick(b, predictions), Pick(b, probabilitiesOf), d, l, s), Empty(4, length / 4));
        AssertLoss("focal loss", (b, d, l, s) => b.SigmoidFocalLoss(Pick(b, predictions), Pick(b, binary), 0.25f, 2, 1, d, l, s), Empty(4, length / 4));
        AssertLoss("weighted absolute error", (b, d, l, s) => b.WeightedAbsoluteError(Pick(b, predictions), Pick(b, targets), Pick(b, weights), 1, d, l, s), Empty(4, length / 4));

        var maps = Random(3, 4, 9, 10);
        var bias = Random(4);
        var sums = Empty(4);
        _reference.ChannelSums(maps.Reference, sums.Reference);
        _cpu.ChannelSums(maps.Cpu, sums.Cpu);
        AssertClose(sums.Reference, sums.Cpu, "channel sums");
        var window = Random(3, 4, 6, 7);
        _reference.CopyWindow(maps.Reference, 2, 1, window.Reference, 1, 2, 5, 4);
        _cpu.CopyWindow(maps.Cpu, 2, 1, window.Cpu, 1, 2, 5, 4);
        Assert.Equal(window.Reference.ToArray(), window.Cpu.ToArray());
        _reference.AddChannelBias(bias.Reference, maps.Reference);
        _cpu.AddChannelBias(bias.Cpu, maps.Cpu);
        Assert.Equal(maps.Reference.ToArray(), maps.Cpu.ToArray());
    }

    private Tensor Pick(IBackend backend, (Tensor Reference, Tensor Cpu) pair) => ReferenceEquals(backend, _reference) ? pair.Reference : pair.Cpu;

    [Fact]
    public void DenseAndGlobalPoolingAndElementwise()
    {
        var x = Random(7, 3, 5, 3);
        var w = Random(13, 45);
        var b = Random(13);
        var y = Empty(7, 13);
        _reference.DenseForward(x.Reference, w.Reference, b.Reference, y.Reference);
        _cpu.DenseForward(x.Cpu, w.Cpu, b.Cpu, y.Cpu);
        AssertClose(y.Reference, y.Cpu, "dense forward");
        var dy = Random(7, 13);
        var (dx, dw, db) = (Empty(7, 3, 5, 3), Empty(13, 45), Empty(13));
        _reference.DenseBackward(x.Reference, w.Reference, dy.Reference, dx.Reference, dw.Reference, db.Reference);
        _cpu.DenseBackward(x.Cpu, w.Cpu, dy.Cpu, dx.Cpu, dw.Cpu, db.Cpu);
        AssertClose(dx.Reference, dx.Cpu, "dense dx");
        AssertClose(dw.Reference, dw.Cpu, "dense dw");
        AssertClose(db.Reference, db.Cpu, "dense db");

        var pooled = Empty(7, 3);
        _reference.GlobalAvgPoolForward(x.Reference, pooled.Reference);
        _cpu.GlobalAvgPoolForward(x.Cpu, pooled.Cpu);
        AssertClose(pooled.Reference, pooled.Cpu, "global average pool");

        var other = Random(7, 3, 5, 3);
        var sum = Empty(7, 3, 5, 3);
        _reference.Add(x.Reference, other.Reference, sum.Reference);
        _cpu.Add(x.Cpu, other.Cpu, sum.Cpu);
        _reference.Axpy(-0.5f, other.Reference, sum.Reference);
        _cpu.Axpy(-0.5f, other.Cpu, sum.Cpu);
        AssertClose(sum.Reference, sum.Cpu, "add and axpy");
        Assert.Equal(_reference.SumOfSquares(sum.Reference), _cpu.SumOfSquares(sum.Cpu), 3);
    }

    [Fact]
    public void OneNormOverManyTensorsIsTheSumOfTheirNorms()
    {
        // Sizes across the GPU's 64 slices, as a network's parameters come.
        var tensors = new[] { Random(3, 5), Random(1), Random(7, 3, 5, 3), Random(70_001) };
        double separately = tensors.Sum(t => _cpu.SumOfSquares(t.Cpu));
        Assert.Equal(separately, _cpu.SumOfSquares(tensors.Select(t => t.Cpu).ToArray()));
        double exact = _reference.SumOfSquares(tensors.Select(t => t.Reference).ToArray());
        Assert.Equal(exact, separately, tolerance: 1e-6 * exact); // float lanes, then double: about 1e-7 relative
        Assert.Equal(0, _cpu.SumOfSquares([]));
    }

    [Theory]
    [InlineData(UpsampleMode.Bilinear, 3, 5, 8, 16)]
    [InlineData(UpsampleMode.Bilinear, 7, 4, 14, 20)]
    [InlineData(UpsampleMode.Nearest, 6, 6, 12, 18)]
    public void UpsamplingForwardIsTheReferencesBitForBitAndBackwardAgrees(UpsampleMode mode, int h, int w, int outH, int outW)
    {
        var x = Random(3, 5, h, w);
        var (y, dx) = (Empty(3, 5, outH, outW), Empty(3, 5, h, w));
        var dy = Random(3, 5, outH, outW);
        _reference.UpsampleForward(mode, x.Reference, y.Reference);
        _cpu.UpsampleForward(mode, x.Cpu, y.Cpu);
        Assert.Equal(y.Reference.ToArray(), y.Cpu.ToArray());
        _cpu.Fill(dx.Cpu, float.NaN); // every gradient value is written, none accumulated onto what was there
        _reference.UpsampleBackward(mode, dy.Reference, dx.Reference);
        _cpu.UpsampleBackward(mode, dy.Cpu, dx.Cpu);
        AssertClose(dx.Reference, dx.Cpu, $"upsampling {mode} backward", rel: 1e-5, abs: 1e-5);
    }

    [Fact]
    public void OptimizerUpdates()
    {
        var (p, g, s1, s2) = (Random(1000), Random(1000), Empty(1000), Empty(1000));
        for (int step = 1; step <= 3; step++)
        {
            _reference.AdamUpdate(p.Reference, g.Reference, s1.Reference, s2.Reference, 0.01f, 0.9f, 0.999f, 1e-8f, 0.01f, step % 2 == 0, step);
            _cpu.AdamUpdate(p.Cpu, g.Cpu, s1.Cpu, s2.Cpu, 0.01f, 0.9f, 0.999f, 1e-8f, 0.01f, step % 2 == 0, step);
            _reference.SgdUpdate(p.Reference, g.Reference, s1.Reference, 0.1f, 0.9f, 1e-4f, step == 2);
            _cpu.SgdUpdate(p.Cpu, g.Cpu, s1.Cpu, 0.1f, 0.9f, 1e-4f, step == 2);
        }
        AssertClose(p.Reference, p.Cpu, "optimizer updates");
    }

    [Theory]
    [InlineData(0f, false)]
    [InlineData(0.9f, false)]
    [InlineData(0.9f, true)]
    public void SgdUpdatesAreTheReferencesBitForBit(float momentum, bool nesterov)
    {
        // 70,003 values: several of the update's ranges, whole vectors and a scalar tail.
        var (p, g, v) = (Random(70003), Random(70003), Random(70003));
        for (int step = 0; step < 2; step++)
        {
            _reference.SgdUpdate(p.Reference, g.Reference, v.Reference, 0.1f, momentum, 1e-4f, nesterov);
            _cpu.SgdUpdate(p.Cpu, g.Cpu, v.Cpu, 0.1f, momentum, 1e-4f, nesterov);
        }
        Assert.Equal(p.Reference.ToArray(), p.Cpu.ToArray());
        Assert.Equal(v.Reference.ToArray(), v.Cpu.ToArray());
    }
}

public sealed class BackendAgreement_Cpu1Thread() : BackendAgreementTests(new CpuBackend(1), 1001);
public sealed class BackendAgreement_Cpu2Threads() : BackendAgreementTests(new CpuBackend(2), 1002);
public sealed class BackendAgreement_Cpu3Threads() : BackendAgreementTests(new CpuBackend(3), 1003);

/// <summary>The GPU backend's kernels on ILGPU's CPU accelerator, with groups of 16 threads as a GPU's are wide.</summary>
[Collection(TestBackends.GpuCollection)]
public sealed class BackendAgreement_GpuOnCpuAccelerator() : BackendAgreementTests(TestBackends.Create("gpu-on-cpu-wide-groups"), 1004);
