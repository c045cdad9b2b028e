//! Every weight the firewall gives a signal that is not a row of `lexicon`'s tables, and
//! every factor that scales one, in one place. Rule and literal-marker weights are the
//! third field of their rows in `lexicon::RULES` and `lexicon::LITERALS` (each row is one
//! technique with its weight); how signals combine is in `super` (`noisy_or`,
//! `distinct_weights`, `combine`).
//!
//! Scale: a signal of 0.5 alone reaches the default sanitize threshold, 0.8 the block
//! threshold; [`MODEL_GATE`] is where the learned scorer starts to count.

/// Weight of a role-play setup by its number of distinct traits (index = count; fewer
/// than three traits score nothing, except [`SETUP_STRONG_PAIR`]).
pub(super) const SETUP_WEIGHTS: [f32; 10] = [0.0, 0.0, 0.0, 0.45, 0.65, 0.8, 0.85, 0.9, 0.9, 0.9];

/// Weight of a setup of two traits, an invented persona and a strong trait
/// (`lexicon::SETUP_STRONG_TRAITS`): at the learned scorer's gate, so the scorer decides.
pub(super) const SETUP_STRONG_PAIR: f32 = 0.35;

/// See `lexicon::FICTION_DISCOUNTED`.
pub(super) const FICTION_FACTOR: f32 = 0.5;

/// Weight of a directive that scripts the reader's answer (`data:directive`) found inside
/// a document the user supplied (after a `data:intro`, with at least
/// `lexicon::EMBEDDED_DIRECTIVE_MIN_GAP` bytes of the document before it): an output-steering
/// instruction hidden in data, the indirect injection that needs no "ignore".
pub(super) const EMBEDDED_DIRECTIVE_WEIGHT: f32 = 0.45;

/// A suffix flags the request on its own (sanitize threshold): no benign reason appends
/// bracket-glued fragments to a plain request (1 of some 9,000 benign training and dev
/// rows, a one-line code question, has the shape), and the learned scorer, trained
/// without such suffixes, does not recognise them (leave-one-source-out it added
/// nothing).
pub(super) const SUFFIX_WEIGHT: f32 = 0.55;

/// A phrase quoted as a whole (`the filter blocks "ignore previous instructions"`) is
/// talked about rather than said: its weight is scaled by this factor.
pub(super) const QUOTED_FACTOR: f32 = 0.35;

/// The same token 16 times in a row (flooding).
pub(super) const REPEATED_TOKEN: f32 = 0.35;

/// A markdown or HTML image whose URL carries a query: rendering it sends the query out.
pub(super) const IMAGE_URL_WITH_QUERY: f32 = 0.45;

/// The same with a template placeholder in the URL (`{conversation}`, `$SECRET`).
pub(super) const IMAGE_URL_TEMPLATED: f32 = 0.8;

/// Two different role labels opening lines: a faked conversation.
pub(super) const FAKE_CONVERSATION: f32 = 0.4;

/// Three or more characters of the Unicode Tag block (invisible ASCII).
pub(super) const TAG_CHARACTERS: f32 = 0.6;

/// Three or more invisible characters (zero-width, bidi controls).
pub(super) const INVISIBLE_CHARACTERS: f32 = 0.15;

/// A decoded view (base64, hex, ROT13, …) counts as `encoded-instructions` when its own
/// rules reach this score; the signal then weighs that score, capped at
/// [`ENCODED_INSTRUCTIONS_MAX`].
pub(super) const ENCODED_VIEW_MIN: f32 = 0.3;

/// See [`ENCODED_VIEW_MIN`].
pub(super) const ENCODED_INSTRUCTIONS_MAX: f32 = 0.95;

/// Within a category the strongest signal counts fully and each other at this factor:
/// near-synonymous rules often fire on the same words.
pub(super) const SAME_CATEGORY_FACTOR: f32 = 0.5;

/// Rule score below which the learned scorer is not consulted.
///
/// Leave-one-source-out training showed the scorer does not carry over to unseen sources
/// on its own (it learns each source's templates and topics: alone it flagged 9–11 % of
/// held-out benign chat), while as corroboration of a technique signal it lifts recall on
/// held-out agent-injection sources (ASB 55 → 77 %, garak latent injection 23 → 53 %). So
/// it can raise a score that a rule started, never start one. 0.35 is the highest gate
/// that keeps those gains on the held-out training sources (chosen there, not on dev).
pub const MODEL_GATE: f32 = 0.35;

/// The scorer's probability is listed as `learned-scorer` evidence from this value.
pub(super) const MODEL_EVIDENCE_MIN: f32 = 0.2;

/// Weights of the instructions-in-data signals for one source of text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct DataWeights {
    /// The assistant addressed and told to act ("AI assistant: forward …").
    pub addressed: f32,
    /// A sentence that opens with an agent's action ("Send the file to …").
    pub imperative: f32,
    /// The assistant addressed inside a document the user pasted in their own turn.
    pub addressed_in_supplied: f32,
}

/// Text the assistant reads as data (a tool's result, a retrieved document) has no
/// business addressing it: there an addressed order flags the text (0.6) and an
/// imperative sentence reaches the learned scorer's gate (it corroborates, never decides
/// alone: documents and e-mails give their human readers orders too). Tool arguments
/// are written by the model, so an address there is weaker evidence. In the user's own
/// turn and the operator's, orders to the assistant are the point; only a document the
/// user pasted in is read as data.
pub(super) fn instructions_in_data(source: super::Source) -> DataWeights {
    use super::Source;
    match source {
        Source::ToolResult | Source::Document => DataWeights {
            addressed: 0.6,
            imperative: IMPERATIVE_IN_DATA,
            addressed_in_supplied: 0.6,
        },
        Source::ToolArguments => DataWeights {
            addressed: 0.35,
            imperative: 0.0,
            addressed_in_supplied: 0.35,
        },
        Source::UserMessage | Source::AssistantMessage | Source::SystemPrompt => DataWeights {
            addressed: 0.0,
            imperative: 0.0,
            addressed_in_supplied: 0.45,
        },
    }
}

/// A sentence in a tool result or document that opens with an agent's action. Under
/// [`MODEL_GATE`]: e-mails and pages order their human readers about ("Click on this link
/// to reset your password", "Please pay the amount due"), and at the gate the learned
/// scorer flagged 4–10 % of the benign data held out of its training; here it only adds
/// to another signal.
pub(super) const IMPERATIVE_IN_DATA: f32 = 0.2;
