//! What a model call cost, from a price table.
//!
//! Budgets in money need a cost per call that the agent cannot influence, so the gateway prices
//! the usage it metered itself. Prices are USD per million tokens, as providers publish them and
//! as WORKFLOW.md `model.prices` writes them ([`ModelPrice`]); the built-in table covers common
//! models and an override replaces or adds entries. A model is found by its exact name, else by
//! the longest entry that is a prefix of it followed by `-`, `@`, `:` or `[` (dated snapshots
//! such as `gpt-4.1-2025-04-14` or `claude-sonnet-4-5-20250929`), else, for a `provider/model`
//! name, by the part after the last `/` in the same way. A model with no price has no cost
//! (`None`), which the daemon reports as unpriced: a silent zero would let money caps pass.
//!
//! Costs are integer micro-dollars (rounded to the nearest), so journal totals are exact. One USD
//! per million tokens is one micro-dollar per token; prices are kept as integer micro-dollars per
//! million tokens and the product is taken in `u128`, so no float touches a sum.
//!
//! Billing rules: input tokens that were cache reads are billed at the cached-input price, and
//! cache writes (Anthropic `cache_creation_input_tokens`) at the cache-write price (Anthropic's
//! 5-minute rate, 1.25 × input, in the built-in table; one-hour writes cost more and are
//! under-counted); every other input token at the input price. Reasoning tokens are billed as
//! output: providers count them inside `output_tokens`, and if one reports more reasoning than
//! output, the reasoning figure is billed. Long-prompt surcharges, batch and priority tiers are
//! not modelled.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::meter::Usage;

/// Prices of one model in USD per million tokens (WORKFLOW.md `model.prices.<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub input: f64,
    /// Cache reads; defaults to `input` (models without a cache discount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    pub output: f64,
    /// Cache writes; defaults to `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
}

/// A price the table could not take.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PriceError {
    /// A figure in `model.prices` is negative, not a number, or absurdly large. Not retryable:
    /// the workflow must be fixed (the previous table stays in force).
    #[error("model.prices.{model}.{field}: {value} is not a price in USD per million tokens")]
    Invalid {
        model: String,
        field: &'static str,
        value: f64,
    },
}

/// Integer micro-dollars per million tokens (= pico-dollars per token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
    pub cache_write: u64,
}

impl Rates {
    fn from_price(model: &str, price: &ModelPrice) -> Result<Rates, PriceError> {
        let convert = |field: &'static str, value: f64| {
            // A million dollars per million tokens is far past any real price.
            if value.is_finite() && (0.0..=1_000_000.0).contains(&value) {
                // In range, so the cast is exact after rounding.
                Ok((value * 1_000_000.0).round() as u64)
            } else {
                Err(PriceError::Invalid {
                    model: model.to_owned(),
                    field,
                    value,
                })
            }
        };
        let input = convert("input", price.input)?;
        Ok(Rates {
            input,
            cached_input: match price.cached_input {
                Some(value) => convert("cached_input", value)?,
                None => input,
            },
            output: convert("output", price.output)?,
            cache_write: match price.cache_write {
                Some(value) => convert("cache_write", value)?,
                None => input,
            },
        })
    }

    /// The cost of `usage` in micro-dollars, rounded to the nearest.
    pub fn cost_micros(&self, usage: &Usage) -> u64 {
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let written = usage.cache_write_tokens.min(usage.input_tokens - cached);
        let fresh = usage.input_tokens - cached - written;
        let output = usage.output_tokens.max(usage.reasoning_tokens);
        let pico = u128::from(fresh) * u128::from(self.input)
            + u128::from(cached) * u128::from(self.cached_input)
            + u128::from(written) * u128::from(self.cache_write)
            + u128::from(output) * u128::from(self.output);
        u64::try_from((pico + 500_000) / 1_000_000).unwrap_or(u64::MAX)
    }
}

/// Built-in prices, USD per million tokens: (model, input, cached input, output, cache write).
/// Gathered from the providers' published pricing pages as of November 2026; a deployment
/// that needs certainty sets `model.prices`. `claude-haiku-5-5` is deliberately absent: its
/// price depends on the prompt length (over 100k tokens costs 5 ×), which a flat rate would get
/// wrong by that factor one way or the other.
const BUILT_IN: &[(&str, f64, f64, f64, f64)] = &[
    // OpenAI: cache writes are free (billed as ordinary input); pro models have no cache price.
    ("gpt-5.5", 5.0, 0.5, 30.0, 5.0),
    ("gpt-5.5-pro", 30.0, 30.0, 180.0, 30.0),
    ("gpt-5.4", 2.5, 0.25, 15.0, 2.5),
    ("gpt-5.4-mini", 0.75, 0.075, 4.5, 0.75),
    ("gpt-5.4-nano", 0.2, 0.02, 1.25, 0.2),
    ("gpt-5.4-pro", 30.0, 30.0, 180.0, 30.0),
    ("gpt-5.2", 1.75, 0.175, 14.0, 1.75),
    ("gpt-5.2-pro", 21.0, 21.0, 168.0, 21.0),
    ("gpt-5.1", 1.25, 0.125, 10.0, 1.25),
    ("gpt-5", 1.25, 0.125, 10.0, 1.25),
    ("gpt-5-mini", 0.25, 0.025, 2.0, 0.25),
    ("gpt-5-nano", 0.05, 0.005, 0.4, 0.05),
    ("gpt-5-pro", 15.0, 15.0, 120.0, 15.0),
    ("gpt-4.1", 2.0, 0.5, 8.0, 2.0),
    ("gpt-4.1-mini", 0.4, 0.1, 1.6, 0.4),
    ("gpt-4.1-nano", 0.1, 0.025, 0.4, 0.1),
    ("gpt-4o", 2.5, 1.25, 10.0, 2.5),
    ("gpt-4o-mini", 0.15, 0.075, 0.6, 0.15),
    ("o3", 2.0, 0.5, 8.0, 2.0),
    ("o3-pro", 20.0, 20.0, 80.0, 20.0),
    ("o3-mini", 1.1, 0.55, 4.4, 1.1),
    ("o4-mini", 1.1, 0.275, 4.4, 1.1),
    // Anthropic: cache writes at the 5-minute rate (1.25 × input). An unknown later minor
    // version falls back to its family's oldest entry (`claude-opus-4-9` to `claude-opus-4`),
    // which over-counts rather than under-counts for the Opus 4 line.
    ("claude-opus-5-5", 4.0, 0.2, 20.0, 5.0),
    ("claude-opus-5", 5.0, 0.5, 25.0, 6.25),
    ("claude-opus-4-8", 5.0, 0.5, 25.0, 6.25),
    ("claude-opus-4-7", 5.0, 0.5, 25.0, 6.25),
    ("claude-opus-4-6", 5.0, 0.5, 25.0, 6.25),
    ("claude-opus-4-5", 5.0, 0.5, 25.0, 6.25),
    ("claude-opus-4-1", 15.0, 1.5, 75.0, 18.75),
    ("claude-opus-4", 15.0, 1.5, 75.0, 18.75),
    ("claude-sonnet-5-5", 2.0, 0.1, 10.0, 2.5),
    ("claude-sonnet-5", 2.0, 0.2, 10.0, 2.5),
    ("claude-sonnet-4", 3.0, 0.3, 15.0, 3.75),
    ("claude-3-7-sonnet", 3.0, 0.3, 15.0, 3.75),
    ("claude-haiku-4-5", 1.0, 0.1, 5.0, 1.25),
    ("claude-3-5-haiku", 0.8, 0.08, 4.0, 1.0),
];

/// Model names to rates: the built-in table with the workflow's overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceTable {
    /// Lower-case names.
    rates: BTreeMap<String, Rates>,
}

impl Default for PriceTable {
    fn default() -> PriceTable {
        let rates = BUILT_IN
            .iter()
            .map(|&(name, input, cached_input, output, cache_write)| {
                let price = ModelPrice {
                    input,
                    cached_input: Some(cached_input),
                    output,
                    cache_write: Some(cache_write),
                };
                // The built-in figures are all in range; a bad one would be skipped, and the
                // unit test that prices every entry would fail.
                Rates::from_price(name, &price).map(|rates| (name.to_owned(), rates))
            })
            .filter_map(Result::ok)
            .collect();
        PriceTable { rates }
    }
}

impl PriceTable {
    /// The built-in table with `overrides` (WORKFLOW.md `model.prices`) replacing or adding
    /// entries. Names match case-insensitively.
    pub fn with_overrides(
        overrides: &BTreeMap<String, ModelPrice>,
    ) -> Result<PriceTable, PriceError> {
        let mut table = PriceTable::default();
        for (name, price) in overrides {
            let rates = Rates::from_price(name, price)?;
            table.rates.insert(name.to_ascii_lowercase(), rates);
        }
        Ok(table)
    }

    /// The rates for `model`, by exact name, then longest prefix at a separator.
    pub fn rates(&self, model: &str) -> Option<Rates> {
        let model = model.trim().to_ascii_lowercase();
        self.lookup(&model).or_else(|| {
            let (_, bare) = model.rsplit_once('/')?;
            self.lookup(bare)
        })
    }

    fn lookup(&self, model: &str) -> Option<Rates> {
        if let Some(rates) = self.rates.get(model) {
            return Some(*rates);
        }
        // Walking back over separator positions tries the longest prefix first.
        model
            .char_indices()
            .rev()
            .filter(|(_, c)| matches!(c, '-' | '@' | ':' | '['))
            .find_map(|(at, _)| self.rates.get(&model[..at]).copied())
    }

    /// The cost of a call in micro-dollars; `None` when the model has no price. A call that used
    /// no tokens costs zero whatever the model.
    pub fn cost_micros(&self, model: Option<&str>, usage: &Usage) -> Option<u64> {
        if usage.input_tokens == 0 && usage.output_tokens == 0 && usage.reasoning_tokens == 0 {
            return Some(0);
        }
        Some(self.rates(model?)?.cost_micros(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, cached: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            cached_input_tokens: cached,
            output_tokens: output,
            ..Usage::default()
        }
    }

    #[test]
    fn every_built_in_entry_is_priced() {
        let table = PriceTable::default();
        assert_eq!(table.rates.len(), BUILT_IN.len());
        for (name, ..) in BUILT_IN {
            assert!(table.rates(name).is_some(), "{name}");
        }
    }

    #[test]
    fn cached_and_output_tokens_are_billed_at_their_own_prices() {
        let table = PriceTable::default();
        // gpt-5.5: 1M fresh input $5 + 1M cached $0.50 + 1M output $30.
        let cost = table.cost_micros(Some("gpt-5.5"), &usage(2_000_000, 1_000_000, 1_000_000));
        assert_eq!(cost, Some(35_500_000));
        // 1200 input (200 cached), 80 output on gpt-5: 1000 × 1.25 + 200 × 0.125 + 80 × 10
        // = 1250 + 25 + 800 micro-dollars.
        let cost = table.cost_micros(Some("gpt-5"), &usage(1_200, 200, 80));
        assert_eq!(cost, Some(2_075));
    }

    #[test]
    fn anthropic_cache_writes_cost_more_than_input() {
        let table = PriceTable::default();
        let written = Usage {
            input_tokens: 1_000_000,
            cache_write_tokens: 1_000_000,
            ..Usage::default()
        };
        assert_eq!(
            table.cost_micros(Some("claude-sonnet-4-5"), &written),
            Some(3_750_000)
        );
    }

    #[test]
    fn reasoning_is_billed_as_output_and_never_twice() {
        let table = PriceTable::default();
        let mut u = usage(0, 0, 100);
        u.reasoning_tokens = 60;
        assert_eq!(table.cost_micros(Some("o3"), &u), Some(800));
        u.reasoning_tokens = 150;
        assert_eq!(table.cost_micros(Some("o3"), &u), Some(1_200));
    }

    #[test]
    fn snapshots_match_by_longest_prefix_at_a_separator() {
        let table = PriceTable::default();
        let rate = |model: &str| table.rates(model).map(|r| r.input);
        assert_eq!(rate("gpt-4.1-mini-2025-04-14"), Some(400_000));
        assert_eq!(rate("gpt-4.1-2025-04-14"), Some(2_000_000));
        assert_eq!(rate("gpt-5-mini-2025-08-07"), Some(250_000));
        assert_eq!(rate("claude-opus-4-1-20250805"), Some(15_000_000));
        assert_eq!(rate("claude-opus-4-5-20251101"), Some(5_000_000));
        assert_eq!(rate("claude-sonnet-4-5@20250929"), Some(3_000_000));
        assert_eq!(rate("CLAUDE-HAIKU-4-5"), Some(1_000_000));
        assert_eq!(rate("openai/gpt-5.4-mini"), Some(750_000));
        // Not a separator: gpt-5.5 is not a gpt-5 snapshot, and an unknown model is unpriced.
        assert_eq!(rate("gpt-5.9"), None);
        assert_eq!(rate("mock-model"), None);
        assert_eq!(rate("claude-haiku-5-5"), None);
    }

    #[test]
    fn an_unpriced_model_has_no_cost_unless_it_used_nothing() {
        let table = PriceTable::default();
        assert_eq!(table.cost_micros(Some("llama-3"), &usage(10, 0, 10)), None);
        assert_eq!(table.cost_micros(None, &usage(10, 0, 10)), None);
        assert_eq!(table.cost_micros(None, &usage(0, 0, 0)), Some(0));
    }

    #[test]
    fn overrides_replace_and_add_and_win_by_longest_prefix() {
        let overrides: BTreeMap<String, ModelPrice> = serde_json::from_str(
            r#"{"gpt-5": {"input": 2, "cached_input": 1, "output": 20},
                "Local-Qwen": {"input": 0.1, "output": 0.2}}"#,
        )
        .expect("prices");
        let table = PriceTable::with_overrides(&overrides).expect("valid");
        assert_eq!(
            table.rates("gpt-5-2025-08-07").map(|r| r.input),
            Some(2_000_000)
        );
        // The built-in gpt-5-mini is a longer prefix than the overridden gpt-5.
        assert_eq!(table.rates("gpt-5-mini").map(|r| r.input), Some(250_000));
        let local = table.rates("local-qwen").expect("added");
        assert_eq!((local.cached_input, local.output), (100_000, 200_000));
        assert_eq!(
            table.cost_micros(Some("local-qwen-7b"), &usage(1_000_000, 0, 0)),
            Some(100_000)
        );
    }

    #[test]
    fn invalid_overrides_name_the_model_and_field() {
        for bad in [-1.0, f64::NAN, f64::INFINITY, 2e6] {
            let overrides = BTreeMap::from([(
                "m".to_owned(),
                ModelPrice {
                    input: 1.0,
                    cached_input: None,
                    output: bad,
                    cache_write: None,
                },
            )]);
            let error = PriceTable::with_overrides(&overrides).expect_err("invalid");
            assert!(
                error.to_string().starts_with("model.prices.m.output"),
                "{error}"
            );
        }
        let unknown = serde_json::from_str::<ModelPrice>(r#"{"input":1,"output":2,"outptu":3}"#);
        assert!(unknown.is_err());
    }

    #[test]
    fn costs_round_to_the_nearest_micro_dollar() {
        let table = PriceTable::default();
        // gpt-5-nano input is $0.05 per million: 10 tokens = 0.5 micro-dollars, 9 = 0.45.
        assert_eq!(
            table.cost_micros(Some("gpt-5-nano"), &usage(10, 0, 0)),
            Some(1)
        );
        assert_eq!(
            table.cost_micros(Some("gpt-5-nano"), &usage(9, 0, 0)),
            Some(0)
        );
    }
}
