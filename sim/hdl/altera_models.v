// Behavioural models of the Intel primitives the DE10-Nano top instantiates, for simulation and
// for linting with Verilator (Quartus has the real ones): the I/O buffers Amaranth's Intel
// platform emits, altera_pll and altera_std_synchronizer.

// Input buffer: a wire.
module altiobuf_in #(
    parameter enable_bus_hold = "FALSE",
    parameter number_of_channels = 1,
    parameter use_differential_mode = "FALSE"
) (
    input [number_of_channels-1:0] datain,
    output [number_of_channels-1:0] dataout
);
    assign dataout = datain;
endmodule

// Output buffer: a wire (the top drives its outputs all the time; oe is not modelled).
module altiobuf_out #(
    parameter enable_bus_hold = "FALSE",
    parameter number_of_channels = 1,
    parameter use_differential_mode = "FALSE",
    parameter use_oe = "FALSE"
) (
    input [number_of_channels-1:0] datain,
    /* verilator lint_off UNUSEDSIGNAL */
    input [number_of_channels-1:0] oe,
    /* verilator lint_on UNUSEDSIGNAL */
    output [number_of_channels-1:0] dataout
);
    assign dataout = datain;
endmodule

// Fractional PLL: the output is the reference clock itself (frequencies are not modelled); locked
// rises 16 reference edges after reset.
module altera_pll #(
    parameter fractional_vco_multiplier = "false",
    parameter reference_clock_frequency = "50.0 MHz",
    parameter operation_mode = "direct",
    parameter number_of_clocks = 1,
    parameter pll_type = "General",
    parameter pll_subtype = "General",
    parameter output_clock_frequency0 = "0 MHz", parameter phase_shift0 = "0 ps", parameter duty_cycle0 = 50,
    parameter output_clock_frequency1 = "0 MHz", parameter phase_shift1 = "0 ps", parameter duty_cycle1 = 50,
    parameter output_clock_frequency2 = "0 MHz", parameter phase_shift2 = "0 ps", parameter duty_cycle2 = 50,
    parameter output_clock_frequency3 = "0 MHz", parameter phase_shift3 = "0 ps", parameter duty_cycle3 = 50,
    parameter output_clock_frequency4 = "0 MHz", parameter phase_shift4 = "0 ps", parameter duty_cycle4 = 50,
    parameter output_clock_frequency5 = "0 MHz", parameter phase_shift5 = "0 ps", parameter duty_cycle5 = 50,
    parameter output_clock_frequency6 = "0 MHz", parameter phase_shift6 = "0 ps", parameter duty_cycle6 = 50,
    parameter output_clock_frequency7 = "0 MHz", parameter phase_shift7 = "0 ps", parameter duty_cycle7 = 50,
    parameter output_clock_frequency8 = "0 MHz", parameter phase_shift8 = "0 ps", parameter duty_cycle8 = 50,
    parameter output_clock_frequency9 = "0 MHz", parameter phase_shift9 = "0 ps", parameter duty_cycle9 = 50,
    parameter output_clock_frequency10 = "0 MHz", parameter phase_shift10 = "0 ps", parameter duty_cycle10 = 50,
    parameter output_clock_frequency11 = "0 MHz", parameter phase_shift11 = "0 ps", parameter duty_cycle11 = 50,
    parameter output_clock_frequency12 = "0 MHz", parameter phase_shift12 = "0 ps", parameter duty_cycle12 = 50,
    parameter output_clock_frequency13 = "0 MHz", parameter phase_shift13 = "0 ps", parameter duty_cycle13 = 50,
    parameter output_clock_frequency14 = "0 MHz", parameter phase_shift14 = "0 ps", parameter duty_cycle14 = 50,
    parameter output_clock_frequency15 = "0 MHz", parameter phase_shift15 = "0 ps", parameter duty_cycle15 = 50,
    parameter output_clock_frequency16 = "0 MHz", parameter phase_shift16 = "0 ps", parameter duty_cycle16 = 50,
    parameter output_clock_frequency17 = "0 MHz", parameter phase_shift17 = "0 ps", parameter duty_cycle17 = 50
) (
    input refclk,
    input rst,
    /* verilator lint_off UNUSEDSIGNAL */
    input fbclk,
    /* verilator lint_on UNUSEDSIGNAL */
    output [number_of_clocks-1:0] outclk,
    output fboutclk,
    output locked
);
    reg [4:0] count = 5'd0;
    always @(posedge refclk or posedge rst)
        if (rst) count <= 5'd0;
        else if (!count[4]) count <= count + 5'd1;
    assign outclk = {number_of_clocks{refclk}};
    assign fboutclk = refclk;
    assign locked = count[4];
endmodule

// Synchronizer: depth flip-flops, cleared asynchronously by reset_n.
module altera_std_synchronizer #(
    parameter depth = 3
) (
    input clk,
    input reset_n,
    input din,
    output dout
);
    reg [depth-1:0] q = {depth{1'b0}};
    always @(posedge clk or negedge reset_n)
        if (!reset_n) q <= {depth{1'b0}};
        else q <= {q[depth-2:0], din};
    assign dout = q[depth-1];
endmodule
