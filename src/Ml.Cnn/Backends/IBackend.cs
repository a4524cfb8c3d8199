using Ml.Cnn.Tensors;

namespace Ml.Cnn.Backends;

/// <summary>
/// The compute primitives every layer, loss and optimizer is written against. Implementations own tensor memory, so
/// a GPU backend keeps everything device-resident; only the scalar results of losses and reductions come back.
/// Shapes are validated by the callers (layers); a backend may assume consistent arguments.
/// Parameter gradients are written, not accumulated; <see cref="Axpy"/> accumulates where a graph needs it.
/// </summary>
public interface IBackend
{
    /// <summary>A short name for messages and benchmarks.</summary>
    string Name { get; }

    /// <summary>Allocates a zero-filled tensor.</summary>
    Tensor Allocate(TensorShape shape);

    // ---- elementwise and data movement ----

    /// <summary>Sets every element to <paramref name="value"/>.</summary>
    void Fill(Tensor t, float value);

    /// <summary>dst ← src (same length).</summary>
    void Copy(Tensor src, Tensor dst);

    /// <summary>y ← a + b.</summary>
    void Add(Tensor a, Tensor b, Tensor y);

    /// <summary>y ← y + α·x.</summary>
    void Axpy(float alpha, Tensor x, Tensor y);

    /// <summary>t ← t · factor.</summary>
    void Scale(Tensor t, float factor);

    /// <summary>Σ t², accumulated in double (for gradient clipping and L2 penalties).</summary>
    double SumOfSquares(Tensor t);

    /// <summary>
    /// Σ t² over all the tensors, each tensor's sum added in order: gradient clipping's and the L2 penalty's one norm
    /// over every parameter, read back once rather than once per tensor.
    /// </summary>
    double SumOfSquares(IReadOnlyList<Tensor> tensors);

    /// <summary>
    /// Copies <paramref name="channels"/> channels of every batch item between NC… tensors of equal batch and spatial
    /// size: the primitive under channel concatenation and its backward pass.
    /// </summary>
    void CopyChannels(Tensor src, int srcChannelOffset, Tensor dst, int dstChannelOffset, int channels);

    /// <summary>
    /// Copies a height × width window of every plane between NCHW tensors of equal batch and channels: from (srcY, srcX)
    /// in src to (dstY, dstX) in dst; the rest of dst is left as it is (crops and their backward pass).
    /// </summary>
    void CopyWindow(Tensor src, int srcY, int srcX, Tensor dst, int dstY, int dstX, int height, int width);

    /// <summary>y[n, c, …] ← y[n, c, …] + bias[c] (the bias of a transposed convolution).</summary>
    void AddChannelBias(Tensor bias, Tensor y);

    /// <summary>sums[c] ← Σ over items and positions of x[n, c, …] (a channel bias's gradient).</summary>
    void ChannelSums(Tensor x, Tensor sums);

    // ---- matrix products ----

    /// <summary>C ← α·op(A)·op(B) + β·C for row-major 2-D tensors; op transposes when asked.</summary>
    void MatMul(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, float alpha = 1f, float beta = 0f);

    /// <summary>y[N, out] ← x[N, in] · wᵀ + b, with w [out, in].</summary>
    void DenseForward(Tensor x, Tensor w, Tensor? b, Tensor y);

    /// <summary>Gradients of <see cref="DenseForward"/>: dx (optional), dw, db (optional).</summary>
    void DenseBackward(Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db);

    // ---- convolution ----

    /// <summary>y ← conv(x, w) + b.</summary>
    void ConvForward(in ConvGeometry g, Tensor x, Tensor w, Tensor? b, Tensor y);

    /// <summary>dx ← ∂L/∂x given dy.</summary>
    void ConvBackwardData(in ConvGeometry g, Tensor dy, Tensor w, Tensor dx);

    /// <summary>dw ← ∂L/∂w and db ← ∂L/∂b given x and dy.</summary>
    void ConvBackwardWeights(in ConvGeometry g, Tensor x, Tensor dy, Tensor dw, Tensor? db);

    // ---- pooling ----

    /// <summary>Max pooling; padding never wins the max.</summary>
    void MaxPoolForward(in PoolGeometry g, Tensor x, Tensor y);

    /// <summary>Routes dy to the first maximum of each window (PyTorch's tie rule).</summary>
    void MaxPoolBackward(in PoolGeometry g, Tensor x, Tensor dy, Tensor dx);

    /// <summary>Average pooling with PyTorch's divisor rules.</summary>
    void AvgPoolForward(in PoolGeometry g, Tensor x, Tensor y);

    /// <summary>Backward of <see cref="AvgPoolForward"/>.</summary>
    void AvgPoolBackward(in PoolGeometry g, Tensor dy, Tensor dx);

    /// <summary>y[N, C] ← mean over H·W of x[N, C, H, W].</summary>
    void GlobalAvgPoolForward(Tensor x, Tensor y);

    /// <summary>Backward of <see cref="GlobalAvgPoolForward"/>.</summary>
    void GlobalAvgPoolBackward(Tensor dy, Tensor dx);

    // ---- resampling ----

    /// <summary>
    /// Resizes the planes of x [N, C, H, W] to y's plane with PyTorch's <c>interpolate</c> rules: nearest takes
    /// source index ⌊dst · H/H′⌋; bilinear (align_corners = false) samples at (dst + ½) · H/H′ − ½, clamped at 0.
    /// </summary>
    void UpsampleForward(UpsampleMode mode, Tensor x, Tensor y);

    /// <summary>Backward of <see cref="UpsampleForward"/>: scatters dy back onto dx's plane.</summary>
    void UpsampleBackward(UpsampleMode mode, Tensor dy, Tensor dx);

    // ---- pointwise nonlinearities and dropout ----

    /// <summary>y ← f(x); α and β are the function's parameters (<see cref="ActivationKind"/>), unused by most.</summary>
    void ActivationForward(ActivationKind kind, float alpha, float beta, Tensor x, Tensor y);

    /// <summary>dx ← f′(x) ⊙ dy (y is f(x), which some derivatives use).</summary>
    void ActivationBackward(ActivationKind kind, float alpha, float beta, Tensor x, Tensor y, Tensor dy, Tensor dx);

    /// <summary>
    /// y ← a ⊙ b, where b has a's shape or holds one value per item and channel, broadcast over the plane
    /// (squeeze-and-excitation gates).
    /// </summary>
    void Multiply(Tensor a, Tensor b, Tensor y);

    /// <summary>da ← dy ⊙ b and db ← dy ⊙ a, the latter summed over each plane when b was broadcast.</summary>
    void MultiplyBackward(Tensor a, Tensor b, Tensor dy, Tensor da, Tensor db);

    /// <summary>
    /// Inverted dropout: y ← x / (1 − p) where a counter-based hash of (seed, index) keeps the element, 0 elsewhere.
    /// The mask is recomputed from the seed in backward, so it costs no memory and no thread-order dependence.
    /// </summary>
    void DropoutForward(Tensor x, Tensor y, float p, ulong seed);

    /// <summary>Backward of <see cref="DropoutForward"/> with the same seed.</summary>
    void DropoutBackward(Tensor dy, Tensor dx, float p, ulong seed);

    // ---- normalization ----

    /// <summary>
    /// Batch normalization with batch statistics over N·H·W per channel; saves mean and 1/σ for backward and updates
    /// the running statistics with PyTorch's convention (r ← (1 − m)·r + m·batch, unbiased variance).
    /// </summary>
    void BatchNormTrainForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor savedMean, Tensor savedInvStd,
        Tensor runningMean, Tensor runningVar, float momentum, float epsilon);

    /// <summary>Batch normalization with the running statistics; saves the mean and 1/σ it used for backward.</summary>
    void BatchNormEvalForward(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float epsilon, Tensor y,
        Tensor savedMean, Tensor savedInvStd);

    /// <summary>
    /// Backward of either forward pass. With <paramref name="batchStatistics"/> the mean and variance depend on x (training);
    /// without, they are constants (evaluation, e.g. a frozen network being fine-tuned).
    /// </summary>
    void BatchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor savedMean, Tensor savedInvStd, bool batchStatistics,
        Tensor dx, Tensor dgamma, Tensor dbeta);

    /// <summary>
    /// Layer normalization over axis 1 at every position: each pixel's C channels of an [N, C, H, W] tensor
    /// (PyTorch's LayerNorm on channels-last images, ConvNeXt's LayerNorm2d), or each row of an [N, F] one;
    /// y = (x − μ)/√(σ² + ε)·γ + β with per-channel γ and β and the biased variance. Saves μ and 1/σ of each of the
    /// N·H·W positions for backward.
    /// </summary>
    void LayerNormForward(Tensor x, Tensor gamma, Tensor beta, float epsilon, Tensor y, Tensor savedMean, Tensor savedInvStd);

    /// <summary>Backward of <see cref="LayerNormForward"/>: writes dx, dγ and dβ.</summary>
    void LayerNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor savedMean, Tensor savedInvStd, Tensor dx, Tensor dgamma,
        Tensor dbeta);

    /// <summary>
    /// Local response normalization across channels (PyTorch's form): y = x / (k + α/n · Σ x²)^β over a window of
    /// n channels; <paramref name="scale"/> receives the bracket for backward.
    /// </summary>
    void LrnForward(Tensor x, Tensor y, Tensor scale, int size, float alpha, float beta, float k);

    /// <summary>Backward of <see cref="LrnForward"/>.</summary>
    void LrnBackward(Tensor x, Tensor y, Tensor scale, Tensor dy, Tensor dx, int size, float alpha, float beta);

    // ---- attention ----

    /// <summary>
    /// Multi-head scaled dot-product self-attention over the positions of each item. <paramref name="qkv"/> is
    /// [N, 3C, H, W]: channels [0, C) are the queries, [C, 2C) the keys, [2C, 3C) the values, and head h owns channels
    /// [h·d, (h + 1)·d) of each, d = C / heads; the T = H·W positions are the tokens. For each item and head:
    /// P = softmax over keys of scale · QᵀK ([T, T], saved into <paramref name="probabilities"/> [N, heads, T, T]),
    /// and y [N, C, H, W] ← V·Pᵀ (PyTorch's <c>MultiheadAttention</c> between its in- and out-projections).
    /// </summary>
    void AttentionForward(Tensor qkv, int heads, float scale, Tensor probabilities, Tensor y);

    /// <summary>
    /// Backward of <see cref="AttentionForward"/>: dqkv ← ∂L/∂qkv given dy; <paramref name="scratch"/> has the
    /// probabilities' shape and receives the scores' gradient.
    /// </summary>
    void AttentionBackward(Tensor qkv, Tensor probabilities, Tensor dy, int heads, float scale, Tensor scratch, Tensor dqkv);

    /// <summary>Row-wise softmax of a [N, C] tensor.</summary>
    void SoftmaxForward(Tensor x, Tensor y);

    /// <summary>dx ← y ⊙ (dy − Σ dy ⊙ y) row-wise.</summary>
    void SoftmaxBackward(Tensor y, Tensor dy, Tensor dx);

    // ---- losses: each adds its value to losses[slot] and writes its gradient ----
    // The value stays where the backend keeps its tensors: a trainer reads a window of batches' losses at once (one
    // device synchronisation per window, not one per batch), and Loss.Compute reads one for a caller that wants it now.

    /// <summary>Softmax cross-entropy of logits [N, C] against class indices [N] (stored as floats), averaged over the batch.</summary>
    void SoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor dLogits, Tensor losses, int slot);

    /// <summary>
    /// Per-pixel softmax cross-entropy of logits [N, C, H, W] against labels [N, H·W] (class indices stored as floats):
    /// pixels labelled <paramref name="ignoreLabel"/> add nothing; with <paramref name="classWeights"/> [C] each pixel
    /// counts w[label] and the mean divides by the summed weights (PyTorch's <c>cross_entropy(weight, ignore_index)</c>).
    /// Adds 0, with a zero gradient, when every pixel is ignored.
    /// </summary>
    void PixelSoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor? classWeights, int ignoreLabel, Tensor dLogits, Tensor losses,
        int slot);

    /// <summary>
    /// <paramref name="scale"/> times the sum over all elements of the sigmoid focal loss (Lin et al., 2017;
    /// torchvision's <c>sigmoid_focal_loss</c>): α_t · (1 − p_t)^γ · BCE(x, t), with p = σ(x), p_t = p·t + (1 − p)(1 − t),
    /// α_t = α·t + (1 − α)(1 − t), and no α weighting when α &lt; 0; the gradient is that of the scaled sum.
    /// </summary>
    void SigmoidFocalLoss(Tensor logits, Tensor targets, float alpha, float gamma, float scale, Tensor dLogits, Tensor losses, int slot);

    /// <summary>
    /// <paramref name="scale"/> · Σ w · |p − t| over all elements, and its gradient scale · w · sign(p − t) (box regression
    /// on chosen cells).
    /// </summary>
    void WeightedAbsoluteError(Tensor predictions, Tensor targets, Tensor weights, float scale, Tensor dPredictions, Tensor losses, int slot);

    /// <summary>Multiclass SVM loss Σ_{j≠y} max(0, s_j − s_y + 1), averaged over the batch.</summary>
    void MulticlassHinge(Tensor scores, Tensor labels, Tensor dScores, Tensor losses, int slot);

    /// <summary>Mean squared error over all elements.</summary>
    void MeanSquaredError(Tensor predictions, Tensor targets, Tensor dPredictions, Tensor losses, int slot);

    /// <summary>Mean absolute error over all elements.</summary>
    void MeanAbsoluteError(Tensor predictions, Tensor targets, Tensor dPredictions, Tensor losses, int slot);

    /// <summary>Binary cross-entropy with logits, averaged over all elements.</summary>
    void BinaryCrossEntropyWithLogits(Tensor logits, Tensor targets, Tensor dLogits, Tensor losses, int slot);

    /// <summary>
    /// Adds to correct[slot] how many of the batch's labels the scores' first maximum matches: one per item for [N, C]
    /// scores against labels [N], one per pixel for [N, C, H, W] against [N, H·W], where pixels labelled
    /// <paramref name="ignoreLabel"/> count for nothing (a classifier's accuracy without downloading its scores).
    /// </summary>
    void CountCorrect(Tensor scores, Tensor labels, int ignoreLabel, Tensor correct, int slot);

    // ---- optimizer updates (PyTorch semantics) ----

    /// <summary>SGD with L2 weight decay, momentum and optional Nesterov; velocity starts at zero.</summary>
    void SgdUpdate(Tensor param, Tensor grad, Tensor velocity, float learningRate, float momentum, float weightDecay, bool nesterov);

    /// <summary>
    /// Adam (L2 decay added to the gradient) or AdamW (<paramref name="decoupledWeightDecay"/>: decay applied to the
    /// weights); <paramref name="step"/> counts from 1.
    /// </summary>
    void AdamUpdate(Tensor param, Tensor grad, Tensor m, Tensor v, float learningRate, float beta1, float beta2,
        float epsilon, float weightDecay, bool decoupledWeightDecay, int step);
}
