using Ml.Cnn.Backends;
using Ml.Cnn.Core;
using Ml.Cnn.Layers;
using Ml.Cnn.Losses;
using Ml.Cnn.Optimizers;
using Ml.Cnn.Tensors;
using Ml.Cnn.Tests.Support;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Operators;

/// <summary>
/// Forward and backward results against PyTorch 1.13's reference tensors (computed in float64), to 1e-4 relative and
/// 1e-5 absolute. One suite, instantiated for each backend below.
/// </summary>
public abstract class TorchAgreementTests(string backendName)
{
    private readonly IBackend _backend = TestBackends.Create(backendName);

    public static TheoryData<string> Cases(string prefix) => new(TorchFixture.CasesWithPrefix(prefix));

    private Tensor Load(TorchFixture f, string name) => TensorOf(_backend, f.Values(name), f.Shape(name));

    /// <summary>Builds the layer on the fixture's input, runs forward and backward, and checks y and dx.</summary>
    private Layer RunLayer(TorchFixture f, Layer layer, string input = "x")
    {
        var x = Load(f, input);
        layer.Build(_backend, x.Shape.DropBatch(), new Rng(1));
        return layer;
    }

    private void CheckForwardBackward(TorchFixture f, Layer layer, bool training = true)
    {
        var x = Load(f, "x");
        var y = layer.Forward(x, training);
        AssertClose(f.Values("y"), y.ToArray(), $"{f.Name} y");
        if (!f.TensorNames.Contains("dx")) return;
        var dy = TensorOf(_backend, f.Values("dy"), y.Shape.Dims.ToArray());
        var dx = layer.Backward(dy)!;
        AssertClose(f.Values("dx"), dx.ToArray(), $"{f.Name} dx");
    }

    [Theory, MemberData(nameof(Cases), "conv2d_", MemberType = typeof(TorchAgreementTests))]
    public void Convolution(string name)
    {
        var f = TorchFixture.Load(name);
        var conv = new Conv2d(f.Shape("w")[0], f.Int("kernel"), f.Int("stride"), f.Int("padding"), f.Int("dilation"), f.Int("groups"));
        RunLayer(f, conv);
        conv.Weight.Value.CopyFrom(f.Values("w"));
        conv.Bias!.Value.CopyFrom(f.Values("b"));
        CheckForwardBackward(f, conv);
        AssertClose(f.Values("dw"), conv.Weight.Gradient.ToArray(), $"{name} dw");
        AssertClose(f.Values("db"), conv.Bias.Gradient.ToArray(), $"{name} db");
    }

    [Theory, MemberData(nameof(Cases), "maxpool_", MemberType = typeof(TorchAgreementTests))]
    public void MaxPooling(string name)
    {
        var f = TorchFixture.Load(name);
        var pool = new MaxPool2d(f.Int("kernel"), f.Int("stride"), f.Int("padding"), f.Bool("ceil_mode"));
        CheckForwardBackward(f, RunLayer(f, pool));
    }

    [Theory, MemberData(nameof(Cases), "avgpool_", MemberType = typeof(TorchAgreementTests))]
    public void AveragePooling(string name)
    {
        var f = TorchFixture.Load(name);
        var pool = new AvgPool2d(f.Int("kernel"), f.Int("stride"), f.Int("padding"), f.Bool("ceil_mode"), f.Bool("count_include_pad"));
        CheckForwardBackward(f, RunLayer(f, pool));
    }

    [Fact]
    public void GlobalAveragePooling()
    {
        var f = TorchFixture.Load("globalavgpool_0");
        CheckForwardBackward(f, RunLayer(f, new GlobalAvgPool()));
    }

    [Fact]
    public void DenseLayer()
    {
        var f = TorchFixture.Load("linear_0");
        var dense = new Dense(f.Shape("w")[0]);
        RunLayer(f, dense);
        dense.Weight.Value.CopyFrom(f.Values("w"));
        dense.Bias!.Value.CopyFrom(f.Values("b"));
        CheckForwardBackward(f, dense);
        AssertClose(f.Values("dw"), dense.Weight.Gradient.ToArray(), "linear dw");
        AssertClose(f.Values("db"), dense.Bias.Gradient.ToArray(), "linear db");
    }

    [Theory]
    [InlineData("act_relu")]
    [InlineData("act_leaky_relu")]
    [InlineData("act_elu")]
    [InlineData("act_sigmoid")]
    [InlineData("act_tanh")]
    [InlineData("act_relu6")]
    [InlineData("act_hardtanh")]
    [InlineData("act_hardsigmoid")]
    [InlineData("act_hardswish")]
    [InlineData("act_silu")]
    [InlineData("act_gelu")]
    public void Activations(string name)
    {
        var f = TorchFixture.Load(name);
        Layer layer = name switch
        {
            "act_relu" => new Relu(),
            "act_leaky_relu" => new LeakyRelu(f.Float("negative_slope")),
            "act_elu" => new Elu(f.Float("alpha")),
            "act_sigmoid" => new Sigmoid(),
            "act_relu6" => new Clip(),
            "act_hardtanh" => new Clip(f.Float("min"), f.Float("max")),
            "act_hardsigmoid" => new HardSigmoid(),
            "act_hardswish" => new HardSwish(),
            "act_silu" => new Silu(),
            "act_gelu" => new Gelu(),
            _ => new Tanh(),
        };
        CheckForwardBackward(f, RunLayer(f, layer));
    }

    [Theory, MemberData(nameof(Cases), "batchnorm_train_", MemberType = typeof(TorchAgreementTests))]
    public void BatchNormTraining(string name)
    {
        var f = TorchFixture.Load(name);
        var bn = new BatchNorm(f.Float("momentum"), f.Float("eps"));
        RunLayer(f, bn);
        bn.Gamma.Value.CopyFrom(f.Values("gamma"));
        bn.Beta.Value.CopyFrom(f.Values("beta"));
        CheckForwardBackward(f, bn);
        AssertClose(f.Values("dgamma"), bn.Gamma.Gradient.ToArray(), $"{name} dgamma");
        AssertClose(f.Values("dbeta"), bn.Beta.Gradient.ToArray(), $"{name} dbeta");
        AssertClose(f.Values("running_mean_after"), bn.RunningMean.ToArray(), $"{name} running mean");
        AssertClose(f.Values("running_var_after"), bn.RunningVariance.ToArray(), $"{name} running var");
    }

    [Theory, MemberData(nameof(Cases), "layernorm_", MemberType = typeof(TorchAgreementTests))]
    public void LayerNormalization(string name)
    {
        var f = TorchFixture.Load(name);
        var norm = new LayerNorm(f.Float("eps"));
        RunLayer(f, norm);
        norm.Gamma.Value.CopyFrom(f.Values("gamma"));
        norm.Beta.Value.CopyFrom(f.Values("beta"));
        CheckForwardBackward(f, norm);
        AssertClose(f.Values("dgamma"), norm.Gamma.Gradient.ToArray(), $"{name} dgamma");
        AssertClose(f.Values("dbeta"), norm.Beta.Gradient.ToArray(), $"{name} dbeta");
    }

    [Theory, MemberData(nameof(Cases), "attention_", MemberType = typeof(TorchAgreementTests))]
    public void SelfAttention(string name)
    {
        var f = TorchFixture.Load(name);
        CheckForwardBackward(f, RunLayer(f, new SelfAttention(f.Int("heads"))));
    }

    [Fact]
    public void ClassTokenAndPositionEmbedding()
    {
        var f = TorchFixture.Load("tokens_0");
        var (token, embedding) = (new ClassToken(), new PositionEmbedding());
        RunLayer(f, token);
        embedding.Build(_backend, token.OutputShape, new Rng(1));
        token.Token.Value.CopyFrom(f.Values("token"));
        embedding.Embedding.Value.CopyFrom(f.Values("embedding"));
        var y = embedding.Forward(token.Forward(Load(f, "x"), training: true), training: true);
        AssertClose(f.Values("y"), y.ToArray(), "tokens y");
        var dx = token.Backward(embedding.Backward(Load(f, "dy"))!)!;
        AssertClose(f.Values("dx"), dx.ToArray(), "tokens dx");
        AssertClose(f.Values("dtoken"), token.Token.Gradient.ToArray(), "tokens dtoken");
        AssertClose(f.Values("dembedding"), embedding.Embedding.Gradient.ToArray(), "tokens dembedding");
        // The class token reads back from position 0.
        var readout = new TokenAt(0);
        readout.Build(_backend, embedding.OutputShape, new Rng(1));
        var cls = readout.Forward(y, training: false).ToArray();
        var expected = y.ToArray();
        for (int n = 0; n < 2; n++)
            for (int c = 0; c < 4; c++) Assert.Equal(expected[(n * 4 + c) * 7], cls[n * 4 + c]);
    }

    [Theory, MemberData(nameof(Cases), "batchnorm_eval_", MemberType = typeof(TorchAgreementTests))]
    public void BatchNormEvaluation(string name)
    {
        var f = TorchFixture.Load(name);
        var bn = new BatchNorm(epsilon: f.Float("eps"));
        RunLayer(f, bn);
        bn.Gamma.Value.CopyFrom(f.Values("gamma"));
        bn.Beta.Value.CopyFrom(f.Values("beta"));
        bn.RunningMean.CopyFrom(f.Values("running_mean"));
        bn.RunningVariance.CopyFrom(f.Values("running_var"));
        CheckForwardBackward(f, bn, training: false);
    }

    [Fact]
    public void LocalResponseNormalization()
    {
        var f = TorchFixture.Load("lrn_0");
        var lrn = new LocalResponseNorm(f.Int("size"), f.Float("alpha"), f.Float("beta"), f.Float("k"));
        CheckForwardBackward(f, RunLayer(f, lrn));
    }

    [Theory]
    [InlineData("loss_softmax_ce", "logits", "labels", "dlogits")]
    [InlineData("loss_softmax_ce_large", "logits", "labels", "dlogits")]
    [InlineData("loss_multiclass_hinge", "scores", "labels", "dscores")]
    [InlineData("loss_mse", "pred", "target", "dpred")]
    [InlineData("loss_l1", "pred", "target", "dpred")]
    [InlineData("loss_bce_logits", "logits", "target", "dlogits")]
    public void Losses(string name, string output, string target, string gradient)
    {
        var f = TorchFixture.Load(name);
        Loss loss = name switch
        {
            "loss_softmax_ce" or "loss_softmax_ce_large" => new SoftmaxCrossEntropyLoss(),
            "loss_multiclass_hinge" => new MulticlassHingeLoss(),
            "loss_mse" => new MeanSquaredErrorLoss(),
            "loss_l1" => new L1Loss(),
            _ => new BinaryCrossEntropyWithLogitsLoss(),
        };
        var o = Load(f, output);
        var grad = _backend.Allocate(o.Shape);
        float value = loss.Compute(o, Load(f, target), grad);
        AssertClose(f.Values("loss"), [value], $"{name} loss");
        AssertClose(f.Values(gradient), grad.ToArray(), $"{name} gradient");
    }

    [Fact]
    public void SoftmaxProbabilities()
    {
        var f = TorchFixture.Load("loss_softmax_ce");
        var softmax = new Softmax();
        var logits = Load(f, "logits");
        softmax.Build(_backend, logits.Shape.DropBatch(), new Rng(1));
        AssertClose(f.Values("softmax"), softmax.Forward(logits, false).ToArray(), "softmax");
    }

    [Theory]
    [InlineData("optim_sgd_momentum")]
    [InlineData("optim_sgd_nesterov")]
    [InlineData("optim_adam")]
    [InlineData("optim_adamw")]
    public void OptimizerSteps(string name)
    {
        var f = TorchFixture.Load(name);
        var p = new Parameter("p", Load(f, "p0"), decays: true);
        Optimizer optimizer = name switch
        {
            "optim_sgd_momentum" or "optim_sgd_nesterov" =>
                new Sgd([p], f.Float("lr"), f.Float("momentum"), f.Bool("nesterov"), f.Float("weight_decay")),
            "optim_adam" => new Adam([p], f.Float("lr"), f.FloatAt("betas", 0), f.FloatAt("betas", 1), f.Float("eps"), f.Float("weight_decay")),
            _ => new AdamW([p], f.Float("lr"), f.FloatAt("betas", 0), f.FloatAt("betas", 1), f.Float("eps"), f.Float("weight_decay")),
        };
        for (int step = 1; step <= 3; step++)
        {
            p.Gradient.CopyFrom(f.Values($"g{step}"));
            optimizer.Step();
            AssertClose(f.Values($"p_after_{step}"), p.Value.ToArray(), $"{name} step {step}");
        }
    }

    [Fact]
    public void LeNet5ForwardAndBackward()
    {
        var f = TorchFixture.Load("net_lenet5");
        // PyTorch Sequential indices: 0 conv, 1 relu, 2 pool, 3 conv, 4 relu, 5 pool, 6 flatten, 7 fc, 8 relu, 9 fc, 10 relu, 11 fc.
        var layers = new (int Index, Layer Layer)[]
        {
            (0, new Conv2d(6, 5, padding: 2)), (1, new Relu()), (2, new MaxPool2d(2)),
            (3, new Conv2d(16, 5)), (4, new Relu()), (5, new MaxPool2d(2)), (6, new Flatten()),
            (7, new Dense(120)), (8, new Relu()), (9, new Dense(84)), (10, new Relu()), (11, new Dense(10)),
        };
        var x = Load(f, "x");
        var shape = x.Shape.DropBatch();
        foreach (var (_, layer) in layers)
        {
            layer.Build(_backend, shape, new Rng(1));
            shape = layer.OutputShape;
        }
        foreach (var (index, layer) in layers)
            foreach (var p in layer.Parameters)
                p.Value.CopyFrom(f.Values($"param_{index}_{p.Name}"));

        var activation = x;
        foreach (var (_, layer) in layers) activation = layer.Forward(activation, training: true);
        AssertClose(f.Values("logits"), activation.ToArray(), "lenet logits");

        var gradient = _backend.Allocate(activation.Shape);
        float loss = new SoftmaxCrossEntropyLoss().Compute(activation, Load(f, "labels"), gradient);
        AssertClose(f.Values("loss"), [loss], "lenet loss");
        for (int i = layers.Length - 1; i >= 0; i--) gradient = layers[i].Layer.Backward(gradient)!;
        foreach (var (index, layer) in layers)
            foreach (var p in layer.Parameters)
                AssertClose(f.Values($"grad_{index}_{p.Name}"), p.Gradient.ToArray(), $"lenet grad_{index}_{p.Name}");
    }

    [Theory, MemberData(nameof(Cases), "convtranspose_", MemberType = typeof(TorchAgreementTests))]
    public void TransposedConvolution(string name)
    {
        var f = TorchFixture.Load(name);
        var layer = new ConvTranspose2d(f.Int("out_channels"), f.Int("kernel"), f.Int("stride"), f.Int("padding"),
            f.Int("output_padding"), f.Int("dilation"), f.Int("groups"));
        RunLayer(f, layer);
        layer.Weight.Value.CopyFrom(f.Values("weight"));
        layer.Bias!.Value.CopyFrom(f.Values("bias"));
        CheckForwardBackward(f, layer);
        AssertClose(f.Values("dweight"), layer.Weight.Gradient.ToArray(), $"{name} dweight");
        AssertClose(f.Values("dbias"), layer.Bias.Gradient.ToArray(), $"{name} dbias");
    }

    [Theory, MemberData(nameof(Cases), "upsample_", MemberType = typeof(TorchAgreementTests))]
    public void Upsampling(string name)
    {
        var f = TorchFixture.Load(name);
        var mode = name.Contains("bilinear") ? UpsampleMode.Bilinear : UpsampleMode.Nearest;
        CheckForwardBackward(f, RunLayer(f, new Upsample(f.Int("scale"), mode)));
    }

    [Theory, MemberData(nameof(Cases), "pixelce_", MemberType = typeof(TorchAgreementTests))]
    public void PixelCrossEntropy(string name)
    {
        var f = TorchFixture.Load(name);
        var loss = new PixelCrossEntropyLoss(f.Int("ignore_index"), f.TensorNames.Contains("weight") ? f.Values("weight") : null);
        var x = Load(f, "x");
        var gradient = _backend.Allocate(x.Shape);
        float value = loss.Compute(x, Load(f, "labels"), gradient);
        AssertClose(f.Values("loss"), [value], $"{name} loss");
        AssertClose(f.Values("dx"), gradient.ToArray(), $"{name} dx");
    }

    [Theory, MemberData(nameof(Cases), "focal_", MemberType = typeof(TorchAgreementTests))]
    public void SigmoidFocalLoss(string name)
    {
        var f = TorchFixture.Load(name);
        var x = Load(f, "x");
        var gradient = _backend.Allocate(x.Shape);
        float loss = LossValue(_backend, (l, s) => _backend.SigmoidFocalLoss(x, Load(f, "targets"), f.Float("alpha"), f.Float("gamma"), 1,
            gradient, l, s));
        AssertClose(f.Values("loss"), [loss], $"{name} loss");
        AssertClose(f.Values("dx"), gradient.ToArray(), $"{name} dx");
    }

    [Fact]
    public void WeightedAbsoluteError()
    {
        var f = TorchFixture.Load("weightedl1_0");
        var p = Load(f, "p");
        var gradient = _backend.Allocate(p.Shape);
        float loss = LossValue(_backend, (l, s) => _backend.WeightedAbsoluteError(p, Load(f, "t"), Load(f, "w"), 1, gradient, l, s));
        AssertClose(f.Values("loss"), [loss], "weighted L1 loss");
        AssertClose(f.Values("dp"), gradient.ToArray(), "weighted L1 dp");
    }
}

public sealed class TorchAgreement_Reference() : TorchAgreementTests("reference");
public sealed class TorchAgreement_Cpu1Thread() : TorchAgreementTests("cpu1");
public sealed class TorchAgreement_Cpu2Threads() : TorchAgreementTests("cpu2");
[Collection(TestBackends.GpuCollection)]
public sealed class TorchAgreement_GpuOnCpuAccelerator() : TorchAgreementTests("gpu-on-cpu");
