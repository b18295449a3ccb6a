"""Pure customer-success logic: health models and scoring, forecasting and metrics formulas."""
