mod budget;
mod scenarios;
mod simulation;
