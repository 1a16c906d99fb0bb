using QuantPeft.Optimizers;
using QuantPeft.Trainers.Model;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Strategies;

/// <summary>
/// LISA (Layerwise Importance Sampled AdamW): the embedding, the final norm and the LM head always train;
/// every K steps γ decoder layers are drawn by a <see cref="LisaSampler"/> and all others are frozen.
/// </summary>
/// <remarks>
/// <para>Memory follows the active set. At a switch the optimizer is rebuilt over the always-trained
/// parameters plus the new layers only: the deactivated layers' moments are released (not paged out), their
/// gradients are dropped and <c>requires_grad</c> is cleared so backward computes none. The always-trained
/// parameters' moments and step counts are carried over (so are those of a layer drawn again in the next period,
/// which was never deactivated), so only newly activated layers restart from zero moments,
/// as in LMFlow's state-discarding LISA trainer. Mainline LMFlow instead keeps every layer's Adam state alive
/// once it was active, so its optimizer memory grows towards full fine-tuning's.</para>
/// <para>Releasing rather than paging: a layer is drawn again on average N/γ periods (N·K/γ steps) later, when
/// its old moments describe weights that have since moved; Adam's bias correction restarts cleanly from zero,
/// and nothing has to be written to disk or read back. The carry-over costs one transient host copy of the
/// outgoing optimizer's state at each switch (every K steps).</para>
/// </remarks>
public sealed class LisaSchedule
{
    private readonly IReadOnlyList<(string Name, Parameter Param)> _always;
    private readonly IReadOnlyList<(string Name, Parameter Param)>[] _layers;
    private readonly Func<IReadOnlyList<(string Name, Parameter Param)>, Optimizer> _build;
    private long _period = -1;

    /// <summary>Freezes every decoder layer of <paramref name="model"/>; the first <see cref="BeforeStep"/> draws the first active set.</summary>
    /// <param name="model">A model whose parameters were made trainable by <see cref="FullParameterTraining.Prepare"/>.</param>
    /// <param name="sampler">The draw (γ, N and seed).</param>
    /// <param name="interval">K, optimizer steps per period.</param>
    /// <param name="buildOptimizer">Builds the optimizer over a trainable set.</param>
    /// <exception cref="StrategyException">K below 1, or the sampler's N differs from the model's layer count.</exception>
    public LisaSchedule(CausalLm model, LisaSampler sampler, int interval,
        Func<IReadOnlyList<(string Name, Parameter Param)>, Optimizer> buildOptimizer)
    {
        if (interval < 1) throw new StrategyException($"--lisa-interval: expected a positive integer, found {interval}");
        if (sampler.LayerCount != model.Layers.Count)
            throw new StrategyException($"--lisa-layers: the sampler draws from {sampler.LayerCount} layers, the model has {model.Layers.Count}");
        Sampler = sampler;
        Interval = interval;
        _build = buildOptimizer;
        _always = model.named_parameters().Where(p => !p.name.StartsWith("model.layers.", StringComparison.Ordinal))
            .Select(p => (p.name, p.parameter)).ToList();
        _layers = model.Layers.Select(l => (IReadOnlyList<(string, Parameter)>)l.named_parameters()
            .Select(p => ($"model.layers.{l.Index}.{p.name}", p.parameter)).ToList()).ToArray();
        foreach (var layer in _layers)
            foreach (var (_, p) in layer) Freeze(p);
        foreach (var (_, p) in _always) p.requires_grad_(true);
    }

    /// <summary>The draw.</summary>
    public LisaSampler Sampler { get; }

    /// <summary>K.</summary>
    public int Interval { get; }

    /// <summary>The decoder layers training now (ascending); empty before the first step.</summary>
    public IReadOnlyList<int> ActiveLayers { get; private set; } = [];

    /// <summary>What trains now: the always-trained parameters, then the active layers' in model order.</summary>
    public IReadOnlyList<(string Name, Parameter Param)> Trainable { get; private set; } = [];

    /// <summary>
    /// When <paramref name="step"/> (0-based) enters a new period ⌊step / K⌋, or <paramref name="current"/> is null,
    /// draws the period's layers, freezes the rest and returns the optimizer for the new set, disposing
    /// <paramref name="current"/>; otherwise returns <paramref name="current"/>.
    /// </summary>
    public Optimizer BeforeStep(int step, Optimizer? current)
    {
        long period = step / Interval;
        if (current is not null && period == _period) return current;
        var active = Sampler.Draw(period);
        OptimizerStateDict? carried = null;
        try
        {
            if (current is not null)
            {
                carried = current.StateDict();
                current.Dispose();
            }
            foreach (var layer in _layers)
                foreach (var (_, p) in layer) Freeze(p);
            foreach (int i in active)
                foreach (var (_, p) in _layers[i]) p.requires_grad_(true);
            ActiveLayers = active;
            _period = period;
            Trainable = [.. _always, .. active.SelectMany(i => _layers[i])];
            var next = _build(Trainable);
            if (carried is not null) CarryOver(next, carried);
            return next;
        }
        finally
        {
            carried?.Dispose();
        }
    }

    // The new optimizer starts from its own zero state; every tensor and scalar it shares by name with the old
    // one (the always-trained parameters' moments and steps, group learning rates, the step count) is copied in.
    private static void CarryOver(Optimizer next, OptimizerStateDict carried)
    {
        using var state = next.StateDict();
        using (no_grad())
            foreach (var (name, t) in state.Tensors)
                if (carried.TryGetTensor(name, out var old)) t.copy_(old);
        foreach (var (name, value) in carried.Scalars)
            if (state.Scalars.ContainsKey(name)) state.SetScalar(name, value);
        next.LoadStateDict(state);
    }

    private static void Freeze(Parameter p)
    {
        p.grad = null;
        p.requires_grad_(false);
    }
}
