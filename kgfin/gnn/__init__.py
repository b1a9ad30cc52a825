"""A relational graph neural network ripple baseline (torch-geometric) over the monthly company graph.

An event is a signal at the firms its news names (event type and news sign, from the text only);
a RippleGNN carries it over the month's relations (supply both ways, board, fund, patent) to a
predicted window residual for every firm. Trained point in time on earlier events, refitted per
scored month; registered as the ripple evaluation's ``gnn`` predictor. See ``docs/gnn.md``.

Importing this package does not import torch; :mod:`kgfin.gnn.layers` and :mod:`kgfin.gnn.model` do.
"""

from kgfin.gnn.config import STORE_RELATIONS, GnnConfig
from kgfin.gnn.events import EVENT_INPUT_COLUMNS, EventEncoder, point_in_time, split_validation
from kgfin.gnn.graph import RelationGraph, edge_types, relation_graph
from kgfin.gnn.ripple import GnnRippleScores, gnn_ripple_scores
from kgfin.gnn.train import FitReport, FittedGnn, fit_gnn

__all__ = ["EVENT_INPUT_COLUMNS", "STORE_RELATIONS", "EventEncoder", "FitReport", "FittedGnn", "GnnConfig",
           "GnnRippleScores", "RelationGraph", "edge_types", "fit_gnn", "gnn_ripple_scores", "point_in_time",
           "relation_graph", "split_validation"]
