namespace QuantPeft.Trainers.Data;

/// <summary>
/// The one place where a preference pair becomes text: the prompt (untrained) followed by one answer (the scored
/// response). A conversation is rendered through the chat template with the answer as the next assistant turn;
/// the earlier turns, assistant ones included, are context and never scored.
/// </summary>
public static class PreferenceFormatting
{
    /// <summary>The segments of <paramref name="record"/>'s prompt followed by <paramref name="answer"/>.</summary>
    /// <param name="record">The pair.</param>
    /// <param name="answer">Its chosen or rejected text.</param>
    /// <param name="template">The model's chat template (conversation form only).</param>
    public static IReadOnlyList<ChatSegment> Render(PreferenceRecord record, string answer, ChatTemplate template)
    {
        if (record.Messages is null)
            return [new ChatSegment(record.Prompt!, false), new ChatSegment(answer, true)];
        var context = template.Render(record.Messages).Select(s => s with { Train = false, EosAfter = false });
        return [.. context, .. template.Render([new ChatMessage("assistant", answer)])];
    }
}
