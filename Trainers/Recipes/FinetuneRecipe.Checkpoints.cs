namespace QuantPeft.Trainers.Recipes;

// Checkpoints that resume exactly (see TrainingCheckpoint): what a run must carry over to continue as if it never
// stopped. The trainable tensors and the optimizer state, the data position (epoch, micro-batch within its seeded
// order), the step (the schedule is a function of it) and the CPU generator.
public sealed partial class FinetuneRecipe
{
    private int _startStep;
    private int _startEpoch;
    private int _startPosition;
    private string? _checkpointRoot;
    private SortedDictionary<string, string>? _fingerprint;

    /// <summary>The optimizer steps already done when <see cref="Train"/> starts: 0, or the resumed checkpoint's step.</summary>
    public int StartStep => _startStep;

    /// <summary>The checkpoint folder this run resumed from (after <see cref="Setup"/> with <see cref="FinetuneOptions.ResumeFrom"/>), else null.</summary>
    public string? ResumedFrom { get; private set; }

    /// <summary>The checkpoint folders this run has written, in order.</summary>
    public List<string> CheckpointsWritten { get; } = [];

    private SortedDictionary<string, string> Fingerprint => _fingerprint ??= TrainingFingerprint.Of(_options);

    // Restores a checkpoint into the freshly set-up model and optimizer. Refuses one written by a run with other
    // trajectory-deciding options, naming the field, before anything is touched.
    private void Resume(string path)
    {
        string checkpoint = TrainingCheckpoint.Resolve(path);
        var state = TrainingCheckpoint.ReadState(checkpoint);
        if (TrainingFingerprint.FirstDifference(state.Fingerprint, Fingerprint) is string difference)
            throw new RecipeException($"--resume: '{checkpoint}': {difference}");
        int perEpoch = BatchesPerEpoch;
        if (state.BatchesPerEpoch != perEpoch)
            throw new RecipeException($"--resume: '{checkpoint}': the data gives {perEpoch} micro-batches per epoch, the checkpoint was written with {state.BatchesPerEpoch}");
        if (state.Step > _options.Steps)
            throw new RecipeException($"--steps: {_options.Steps} is below the checkpoint's step {state.Step} ('{checkpoint}')");
        TrainingCheckpoint.LoadTensors(checkpoint, Trainable());
        // LISA: the optimizer of the period the checkpoint's last step belonged to (its draw depends on seed and period
        // alone); the first step after the resume switches periods exactly where the uninterrupted run did.
        if (_lisa is not null && state.Step > 0) _optimizer = _lisa.BeforeStep(state.Step - 1, _optimizer);
        string archive = Path.Combine(checkpoint, TrainingCheckpoint.OptimizerFileName);
        if (!File.Exists(archive)) throw new RecipeException($"--resume: '{checkpoint}': missing {TrainingCheckpoint.OptimizerFileName}");
        QuantPeft.Optimizers.OptimizerStateArchive.Load(_optimizer!, archive);
        TrainingCheckpoint.RestoreRng(state.TorchRngState);
        (_startStep, _startEpoch, _startPosition) = (state.Step, state.Epoch, state.Position);
        _completedSteps = state.Step;
        ResumedFrom = checkpoint;
    }

    private int _completedSteps;

    // Called from AfterStep: every SaveEvery steps, a checkpoint in the run folder (the metrics log's folder).
    private void MaybeSaveCheckpoint(int step)
    {
        int done = step + 1;
        _completedSteps = done;
        if (_options.SaveEvery <= 0 || done % _options.SaveEvery != 0 || _checkpointRoot is null) return;
        WriteCheckpoint(done, _checkpointRoot);
    }

    /// <summary>
    /// Writes a resumable checkpoint of the state after the last completed optimizer step (the resumed one, or 0,
    /// before <see cref="Train"/>) into <paramref name="runFolder"/> and returns its folder. A run that must stop
    /// between steps (its memory passed the budget) saves this, so that nothing done is lost.
    /// </summary>
    public string SaveCheckpoint(string runFolder)
    {
        if (_optimizer is null) throw new InvalidOperationException("call Setup first");
        if (CheckpointsWritten.Count > 0 && TrainingCheckpoint.ReadState(CheckpointsWritten[^1]).Step == _completedSteps)
            return CheckpointsWritten[^1];
        return WriteCheckpoint(_completedSteps, runFolder);
    }

    private string WriteCheckpoint(int done, string root)
    {
        int perEpoch = BatchesPerEpoch;
        long consumed = (long)done * _options.GradientAccumulation;
        var state = new CheckpointState(done, _options.Steps, consumed, (int)(consumed / perEpoch), (int)(consumed % perEpoch), perEpoch,
            _optimizer!.Groups[0].Lr, Fingerprint, TrainingCheckpoint.CaptureRng());
        string folder = TrainingCheckpoint.Write(root, state, Trainable(), _optimizer);
        CheckpointsWritten.Add(folder);
        return folder;
    }

    private int BatchesPerEpoch => _preference?.Data.TrainBatchCount(_options.MicroBatchSize) ?? Data!.TrainBatchCount(_options.MicroBatchSize);

    private List<(string Name, TorchSharp.torch.Tensor Tensor)> Trainable() =>
        [.. _trainable.Select(t => (t.Name, (TorchSharp.torch.Tensor)t.Param))];
}
