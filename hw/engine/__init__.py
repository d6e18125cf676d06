"""The convolution engine (:class:`ConvEngine`) and the stream components it is made of.

=================== ==========================================================================
module              component
=================== ==========================================================================
``decoder``         :class:`DescriptorDecoder`: descriptor fields (a layout generated from
                    ``models.engine.DESCRIPTOR``) and the sizes derived from them
``validator``       :class:`Validator`: the checks of ``models.engine.validate_descriptor``
``loader``          :class:`Loader`: read bursts and the routing of read data into the buffers
``sequencer``       :class:`Sequencer`: a tile's beats from the buffers to the PE array
``writer``          :class:`Writer`: results -> destination words in a FIFO, with credits
``write_master``    :class:`WriteMaster`: FIFO -> Avalon-MM write bursts
``engine``          :class:`ConvEngine`: the components, the buffers and the control FSM
=================== ==========================================================================
"""

from .decoder import DescriptorDecoder
from .engine import ConvEngine
from .loader import Loader
from .sequencer import Sequencer
from .validator import Validator
from .write_master import WriteMaster
from .writer import Writer

__all__ = ["ConvEngine", "DescriptorDecoder", "Loader", "Sequencer", "Validator", "WriteMaster", "Writer"]
