// Simulation model of the lmflow_hps wrapper (hw/cyclonev_hps.py), which holds the Cyclone V HPS
// atoms on the board. Same ports; in place of the HPS:
// * the lightweight bridge's AXI3 master is a set of registers m_<signal> that the cocotb test
//   drives on the rising edge of clk (sim/tb_de10nano.py); the slave's answers are the inputs;
// * h2f_rst_n is the register m_h2f_rst_n (the test releases the FPGA from reset);
// * FPGA-to-SDRAM port 0 is a memory of DEPTH 128-bit words (word address modulo DEPTH) with
//   a fixed read latency: a read burst returns one beat per cycle from the next cycle on, and
//   the port waits (waitrequest) until the burst is done; writes take one beat per cycle.
//   reads and write_beats count accepted read commands and write beats.
/* verilator lint_off UNUSEDSIGNAL */
module lmflow_hps #(
    parameter DEPTH = 256
) (
    input clk,
    output h2f_rst_n,
    output [11:0] lw_awid,
    output [20:0] lw_awaddr,
    output [3:0] lw_awlen,
    output [2:0] lw_awsize,
    output [1:0] lw_awburst,
    output [1:0] lw_awlock,
    output [3:0] lw_awcache,
    output [2:0] lw_awprot,
    output lw_awvalid,
    input lw_awready,
    output [11:0] lw_wid,
    output [31:0] lw_wdata,
    output [3:0] lw_wstrb,
    output lw_wlast,
    output lw_wvalid,
    input lw_wready,
    input [11:0] lw_bid,
    input [1:0] lw_bresp,
    input lw_bvalid,
    output lw_bready,
    output [11:0] lw_arid,
    output [20:0] lw_araddr,
    output [3:0] lw_arlen,
    output [2:0] lw_arsize,
    output [1:0] lw_arburst,
    output [1:0] lw_arlock,
    output [3:0] lw_arcache,
    output [2:0] lw_arprot,
    output lw_arvalid,
    input lw_arready,
    input [11:0] lw_rid,
    input [31:0] lw_rdata,
    input [1:0] lw_rresp,
    input lw_rlast,
    input lw_rvalid,
    output lw_rready,
    input [27:0] sdram_address,
    input [7:0] sdram_burstcount,
    input sdram_read,
    input sdram_write,
    input [127:0] sdram_writedata,
    input [15:0] sdram_byteenable,
    output sdram_waitrequest,
    output [127:0] sdram_readdata,
    output sdram_readdatavalid
);
    reg m_h2f_rst_n /*verilator public_flat_rw*/ = 1'b0;
    assign h2f_rst_n = m_h2f_rst_n;
    reg [11:0] m_awid /*verilator public_flat_rw*/ = 12'd0;
    reg [20:0] m_awaddr /*verilator public_flat_rw*/ = 21'd0;
    reg [3:0] m_awlen /*verilator public_flat_rw*/ = 4'd0;
    reg [2:0] m_awsize /*verilator public_flat_rw*/ = 3'd0;
    reg [1:0] m_awburst /*verilator public_flat_rw*/ = 2'd0;
    reg [1:0] m_awlock /*verilator public_flat_rw*/ = 2'd0;
    reg [3:0] m_awcache /*verilator public_flat_rw*/ = 4'd0;
    reg [2:0] m_awprot /*verilator public_flat_rw*/ = 3'd0;
    reg m_awvalid /*verilator public_flat_rw*/ = 1'd0;
    reg [11:0] m_wid /*verilator public_flat_rw*/ = 12'd0;
    reg [31:0] m_wdata /*verilator public_flat_rw*/ = 32'd0;
    reg [3:0] m_wstrb /*verilator public_flat_rw*/ = 4'd0;
    reg m_wlast /*verilator public_flat_rw*/ = 1'd0;
    reg m_wvalid /*verilator public_flat_rw*/ = 1'd0;
    reg m_bready /*verilator public_flat_rw*/ = 1'd0;
    reg [11:0] m_arid /*verilator public_flat_rw*/ = 12'd0;
    reg [20:0] m_araddr /*verilator public_flat_rw*/ = 21'd0;
    reg [3:0] m_arlen /*verilator public_flat_rw*/ = 4'd0;
    reg [2:0] m_arsize /*verilator public_flat_rw*/ = 3'd0;
    reg [1:0] m_arburst /*verilator public_flat_rw*/ = 2'd0;
    reg [1:0] m_arlock /*verilator public_flat_rw*/ = 2'd0;
    reg [3:0] m_arcache /*verilator public_flat_rw*/ = 4'd0;
    reg [2:0] m_arprot /*verilator public_flat_rw*/ = 3'd0;
    reg m_arvalid /*verilator public_flat_rw*/ = 1'd0;
    reg m_rready /*verilator public_flat_rw*/ = 1'd0;
    assign lw_awid = m_awid;
    assign lw_awaddr = m_awaddr;
    assign lw_awlen = m_awlen;
    assign lw_awsize = m_awsize;
    assign lw_awburst = m_awburst;
    assign lw_awlock = m_awlock;
    assign lw_awcache = m_awcache;
    assign lw_awprot = m_awprot;
    assign lw_awvalid = m_awvalid;
    assign lw_wid = m_wid;
    assign lw_wdata = m_wdata;
    assign lw_wstrb = m_wstrb;
    assign lw_wlast = m_wlast;
    assign lw_wvalid = m_wvalid;
    assign lw_bready = m_bready;
    assign lw_arid = m_arid;
    assign lw_araddr = m_araddr;
    assign lw_arlen = m_arlen;
    assign lw_arsize = m_arsize;
    assign lw_arburst = m_arburst;
    assign lw_arlock = m_arlock;
    assign lw_arcache = m_arcache;
    assign lw_arprot = m_arprot;
    assign lw_arvalid = m_arvalid;
    assign lw_rready = m_rready;

    localparam AW = $clog2(DEPTH);
    reg [127:0] mem [0:DEPTH-1];
    reg [AW-1:0] rd_addr = 0;
    reg [7:0] rd_left = 0;
    reg [AW-1:0] wr_addr = 0;
    reg [7:0] wr_left = 0;
    reg [127:0] rdata = 0;
    reg rvalid = 1'b0;
    reg [31:0] reads /*verilator public_flat_rw*/ = 0;
    reg [31:0] write_beats /*verilator public_flat_rw*/ = 0;
    integer i;
    initial for (i = 0; i < DEPTH; i = i + 1) mem[i] = 128'd0;

    assign sdram_waitrequest = rd_left != 0;
    assign sdram_readdata = rdata;
    assign sdram_readdatavalid = rvalid;
    wire [AW-1:0] w_index = wr_left != 0 ? wr_addr : sdram_address[AW-1:0];

    always @(posedge clk) begin
        rvalid <= 1'b0;
        if (rd_left != 0) begin
            rdata <= mem[rd_addr];
            rvalid <= 1'b1;
            rd_addr <= rd_addr + 1'b1;
            rd_left <= rd_left - 1'b1;
        end else if (sdram_read) begin
            rd_addr <= sdram_address[AW-1:0];
            rd_left <= sdram_burstcount;
            reads <= reads + 1;
        end
        if (sdram_write && !sdram_waitrequest) begin
            for (i = 0; i < 16; i = i + 1)
                if (sdram_byteenable[i]) mem[w_index][i*8 +: 8] <= sdram_writedata[i*8 +: 8];
            wr_addr <= w_index + 1'b1;
            wr_left <= wr_left != 0 ? wr_left - 1'b1 : sdram_burstcount - 1'b1;
            write_beats <= write_beats + 1;
        end
    end
endmodule
/* verilator lint_on UNUSEDSIGNAL */
