using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Recipes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Recipes;

/// <summary>
/// The paging a run asks of a paged optimizer on a GPU, decided without one (CI has none): only a paged optimizer on
/// CUDA pages through device memory, and its device room holds the f32 m and v of the two largest parameters
/// (2 parameters × 2 moments × 4 bytes per element), as the planner prices the paged share.
/// </summary>
public class DevicePagingTests
{
    [Theory]
    [InlineData(DeviceType.CUDA, OptimizerKind.PagedAdamW, 2, true)]
    [InlineData(DeviceType.CUDA, OptimizerKind.PagedAdamW8bit, 2, true)]
    [InlineData(DeviceType.CPU, OptimizerKind.PagedAdamW, 2, false)]
    [InlineData(DeviceType.CUDA, OptimizerKind.AdamW, 2, false)]
    [InlineData(DeviceType.CUDA, OptimizerKind.PagedAdamW, 0, false)]
    public void OnlyAPagedOptimizerOnAGpuPagesThroughTheDevice(DeviceType device, OptimizerKind optimizer, int trainable, bool pages) =>
        Assert.Equal(pages, RecipeOptimizer.PagesOnDevice(device, optimizer, trainable));

    [Fact]
    public void TheDeviceRoomIsTheTwoLargestParametersF32Moments()
    {
        using var small = new Parameter(zeros(3, 5));
        using var large = new Parameter(zeros(7, 11));
        Assert.Equal(2 * 2 * 4 * 77L, RecipeOptimizer.DeviceMomentBytes([("small", small), ("large", large)]));
    }
}
