using QuantPeft.Trainers.Data;

namespace QuantPeft.Trainers.Strategies;

/// <summary>
/// LISA's layer draw: γ distinct decoder layers out of N, uniformly without replacement, one draw per
/// period of K steps. The draw of period p depends only on (seed, p, N, γ), so a run (or a resumed one)
/// activates the same layers on every machine.
/// </summary>
public sealed class LisaSampler
{
    private const long Purpose = 0x4C495341; // "LISA": keeps these streams apart from the data shuffles of the same seed

    /// <summary>Creates the sampler.</summary>
    /// <exception cref="StrategyException">γ is below 1 or above the layer count.</exception>
    public LisaSampler(int layerCount, int activeLayers, long seed)
    {
        if (activeLayers < 1)
            throw new StrategyException($"--lisa-layers: expected at least 1 sampled layer, found {activeLayers}");
        if (activeLayers > layerCount)
            throw new StrategyException(
                $"--lisa-layers: {activeLayers} exceeds the model's {layerCount} decoder layers (num_hidden_layers); expected 1..{layerCount}");
        LayerCount = layerCount;
        ActiveLayers = activeLayers;
        Seed = seed;
    }

    /// <summary>N, the decoder layers to draw from.</summary>
    public int LayerCount { get; }

    /// <summary>γ, the layers trained at a time.</summary>
    public int ActiveLayers { get; }

    /// <summary>The seed of every draw.</summary>
    public long Seed { get; }

    /// <summary>The layers of period <paramref name="period"/> (0-based), ascending.</summary>
    public IReadOnlyList<int> Draw(long period)
    {
        var random = SeededRandom.Derive(Seed, Purpose + period * 0x10000);
        var order = Enumerable.Range(0, LayerCount).ToArray();
        // A partial Fisher–Yates shuffle: the first γ slots are a uniform γ-subset.
        for (int i = 0; i < ActiveLayers; i++)
        {
            int j = random.Next(i, LayerCount);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return [.. order.Take(ActiveLayers).Order()];
    }
}
